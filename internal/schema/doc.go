// Package schema compiles the input_schema of an entrypoint and checks a
// run's input_args and input_kwargs against it before any agent starts.
//
// An input_schema is a JSON object with up to two members, each a JSON
// Schema (draft 2020-12 unless the schema's "$schema" says otherwise):
//
//	{"kwargs": <schema for the input_kwargs object>,
//	 "args":   <schema for the input_args array>}
//
// An absent (or null) member allows anything. Compile parses and compiles
// the document; it is what runagent.config.json validation calls at deploy
// time. A Cache keeps compiled schemas keyed by a hash of their bytes so a
// request does not recompile. Validate reports violations by location
// (input_kwargs.message, input_args[0]) and rule (minLength 1), never by
// the offending value, so an error can be shown to any caller.
//
// Schemas come from agent deployers and inputs from callers; neither is
// trusted to be cheap:
//
//   - References resolve only inside the schema (and to the standard
//     meta-schemas, which are built in). Nothing is fetched: http, https,
//     file and every other scheme are refused at compile time.
//   - A schema is at most MaxSize bytes and MaxDepth levels of JSON
//     nesting; duplicate object keys are an error.
//   - Compile bounds the work one input value can cause: a schema whose
//     applicators ($ref, anyOf, allOf, oneOf, if/then/else, ...) can apply
//     more than MaxEvaluations subschemas to one value of an input nested
//     up to MaxInputDepth levels is refused (such schemas take time
//     exponential in the input's depth).
//   - Validate refuses, as violations, inputs nested deeper than
//     MaxInputDepth and number literals longer than 100 characters or with
//     an exponent beyond ±400 (exact arithmetic on them is slow, and they
//     are outside the range of a float anyway).
//   - "format" is asserted for the formats the validator knows (email,
//     date-time, uuid, ...); unknown formats are ignored.
package schema
