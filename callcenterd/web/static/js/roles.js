// What each role may do, as the API's rules say (tests/api/route_rules.py): the pages show
// only that. The API checks every request again; this only keeps useless buttons away.

const READERS = new Set(['admin', 'manager', 'supervisor']);

export const can = {
  seeFigures: (role) => READERS.has(role), // dashboards, operators, queues
  manageUsers: (role) => role === 'admin',
  readGroups: (role) => READERS.has(role),
  editGroups: (role) => role === 'admin',
  readQueues: (role) => READERS.has(role),
  editQueues: (role) => role === 'admin',
  editSettings: (role) => role === 'admin',
  superviseCalls: (role) => READERS.has(role), // listen, whisper, barge
  controlAnySession: (role) => role === 'admin' || role === 'manager', // else only one's own
  setOperatorStatus: (role) => READERS.has(role), // a supervisor: their group's operators
  transferCalls: (role) => READERS.has(role), // on the board: other people's calls
  // Hold and unhold: these roles on any call they see, and an operator on their own call.
  holdCalls: (role) => READERS.has(role),
  bookCallbacks: (role) => READERS.has(role),
};
