-- 0017: SMS to callers, switchable per queue (issue 15): after a missed call, when a
-- callback is booked or moved, before a timed callback. All on by default; the global
-- switch is SystemSettings.sms_notifications. The language of the texts: 'ru' or 'en',
-- NULL for the daemon's [sms] language.
ALTER TABLE queues ADD COLUMN sms_missed_call INTEGER NOT NULL DEFAULT 1;
ALTER TABLE queues ADD COLUMN sms_callback_scheduled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE queues ADD COLUMN sms_callback_reminder INTEGER NOT NULL DEFAULT 1;
ALTER TABLE queues ADD COLUMN notification_language TEXT
    CHECK (notification_language IN ('ru', 'en'));
