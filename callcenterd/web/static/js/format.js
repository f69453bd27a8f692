// Durations and times as the board shows them.

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function duration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = String(total % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

/** An ISO time as HH:MM in the browser's zone. */
export function clockTime(iso) {
  if (!iso) return '';
  const when = new Date(iso);
  return `${String(when.getHours()).padStart(2, '0')}:${String(when.getMinutes()).padStart(2, '0')}`;
}

export function percent(value) {
  return `${Number(value ?? 0).toFixed(1)} %`;
}

/** "a, b ,c" -> ["a", "b", "c"]. */
export function words(text) {
  return String(text ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
}
