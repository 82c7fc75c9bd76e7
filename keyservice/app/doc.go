// Package app assembles arca-api from its configuration: it reads the
// oslo-style arca.conf, opens and checks the database, loads the master
// keys, builds the service and its HTTP edge, and serves until told to stop
// (internal/serve, as the filter and the object server do). [keystone_authtoken]
// is read by keystone.LoadConfig, the reader every binary shares.
// cmd/arca-api and cmd/arca-manage are thin shells around it, and tests use
// it to run a real arca-api in process.
package app
