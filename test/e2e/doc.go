// Package e2e holds black-box tests of the runagent binary: they build it,
// run `runagent serve` on a test agent, and talk to it as a RunAgent SDK
// would — plain HTTP, WebSocket and Server-Sent Events — importing no
// package of this project, so they check the wire contract, not the code.
package e2e
