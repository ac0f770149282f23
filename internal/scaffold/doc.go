// Package scaffold writes the agent projects runagent init creates: one
// template per framework (Templates), each in that framework's usual
// layout with a plain and a streaming entrypoint, a runagent.config.json
// with a fresh agent_id, a README and, for a framework, requirements.txt
// and .env.example. The default template uses only Python's standard
// library; the others read their model's API key from the environment and
// answer with how to set it while it is missing. Their files are embedded
// from template/<framework>/.
//
// AssignID is runagent init --existing: it writes a fresh agent_id into a
// project's runagent.config.json by editing the id's bytes alone, so the
// fields agentcfg does not keep (created_at, template_source, unknown
// ones) and the file's formatting survive.
//
// The tests load every template with Debian's python3 against stub
// packages (testdata/stubs/<framework>) that provide just the names the
// template imports.
package scaffold
