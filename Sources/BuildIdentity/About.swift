// The `BuildIdentity` enum (commit, dirty flag) is generated at build time
// by Plugins/BuildIdentityPlugin into this module, so that a binary records
// the commit it was built from wherever it later runs.
