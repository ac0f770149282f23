// Package server wires runagent together: configuration → store → agent
// registry → sandbox backend and executor → HTTP API, with Open, Serve and
// Close so tests can start the whole program on port 0 with a temporary
// data directory. Every default of the configuration is filled in one
// place, Config.WithDefaults; what Open hands the parts is complete.
package server
