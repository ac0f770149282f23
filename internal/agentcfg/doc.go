// Package agentcfg parses and validates runagent.config.json, the file at
// the root of every agent project, into a core.AgentConfig.
//
// The file format is RunAgent's (agent_name, agent_id, framework,
// agent_architecture.entrypoints, env_vars, auth_settings,
// persistent_folders, ...) plus this project's extensions: per-entrypoint
// input_schema and per-agent resources, network, runtime and webhook. Validation is strict
// where a mistake would change what runs (tags, paths, modules, limits,
// network access) and lenient where RunAgent evolves: unknown top-level
// fields and unknown frameworks produce warnings, not errors. Every problem
// in a file is reported at once, as Errors; a config is never accepted
// half-valid.
//
// Decisions worth knowing:
//
//   - JSON null for an optional field means "absent". Duplicate object keys
//     are an error (decoders disagree about which one wins).
//   - created_at, template and template_source are informational and may
//     hold any JSON value (RunAgent writes template_source as an object);
//     they are not kept.
//   - agent_id is optional for Parse (runagent init adds it) and required
//     by Load, which prepares a project for deployment. It must be a UUID
//     in its 36-character form; it is stored lower-cased. The nil UUID is
//     rejected, with a hint: RunAgent's templates carry it as a placeholder,
//     and every project copied from one would share the id; `runagent init
//     --existing` writes a fresh one.
//   - The Python an agent needs is this project's "runtime": {"python":
//     "3.12"} or RunAgent's "metadata": {"runtime": "python3.12"}; both
//     read "3.12", "python3.12", "py3.12" and "Python 3.12" as 3.12, and
//     "python" or "python3" as the server's default. If both name a
//     version they must agree. A metadata.runtime that is not Python
//     (RunAgent's gateway runtimes) is an error; metadata's other
//     members are RunAgent's and are ignored. Whether the server has
//     that Python is the deploy's business, not the parser's.
//   - Python module paths accept ASCII identifiers only.
//   - network.allow hosts are DNS names with at least two labels, or
//     "*.suffix" where suffix has at least two labels. IP literals are
//     rejected: the egress policy is name-based, and a literal address
//     would bypass the resolver checks that keep agents off internal
//     networks. Hosts are stored lower-cased.
//   - "webhook": {"url": "https://…"} names the completion webhook every
//     run reports to (package webhook). The URL is checked as
//     webhook.ParseURL checks it (https, or http to loopback; no user
//     information), and its host and port must be on network.allow:
//     egress rules apply to it. An IP address or localhost is accepted
//     with a warning, as only an operator's allowed ranges reach it.
//   - An entrypoint's input_schema is compiled at load time; see "Input
//     schemas" below.
//   - Environment variable names that the runtime owns (PATH, PYTHONPATH,
//     PYTHONHOME, PYTHONSTARTUP, PYTHONUSERBASE, PYTHONINSPECT, LD_* and
//     RUNAGENT_*) are rejected; names that look like secrets (KEY, SECRET,
//     TOKEN, PASSWORD, PASSWD, CREDENTIAL) with a value produce a warning
//     that never repeats the value.
//
// # Input schemas
//
// An entrypoint's input_schema (this project's extension) is an object
// with up to two members, each a JSON Schema (draft 2020-12 unless its
// "$schema" names another draft): "kwargs" describes the input_kwargs
// object and "args" the input_args array of a run. An absent or null
// member allows anything.
//
//	"input_schema": {
//	  "kwargs": {"type": "object", "required": ["message"],
//	             "properties": {"message": {"type": "string", "minLength": 1}},
//	             "additionalProperties": false},
//	  "args": {"maxItems": 0}
//	}
//
// Both schemas are compiled here, at deploy time, by package schema. A
// schema that does not compile, refers outside itself ($ref or $schema to
// an http, https or file URL, or to another document), is larger than
// 64 KiB or nested deeper than 64 levels, or could make validation
// exponentially slow is an error naming the entrypoint and the place in
// the schema. The document is kept, as compact JSON, in
// core.Entrypoint.InputSchema; the API validates every run against it
// before an agent starts and rejects, never alters, input that breaks it.
package agentcfg
