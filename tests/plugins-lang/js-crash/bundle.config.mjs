// Rolldown options merged into `jco componentize --bundle`. The host's
// interfaces (agent:plugin/...) are provided by the component imports, not
// by files: mark them external so the bundler does not warn about them
// (jco already does this for wasi:*).
export default { external: [/^agent:/] };
