// Package client is a Go client for runagent servers and other servers
// that speak the RunAgent wire protocol: it runs agents' entrypoints,
// streams their output, follows runs in the background, reads invocation
// records and deploys packaged agents. The runagent CLI's run,
// run-stream, runs and deploy commands use it.
//
// # Connecting
//
// [New] takes the server's base URL, such as "http://127.0.0.1:8450", and
// appends /api/v1. [FromEnv] reads RUNAGENT_BASE_URL and RUNAGENT_API_KEY,
// as RunAgent's SDKs do. [WithAPIKey] sends "Authorization: Bearer <key>"
// on every request, the WebSocket handshake included; [WithTokenInQuery]
// additionally puts the key in the WebSocket URL for servers that need
// it. The key never appears in an error's text.
//
// # Running
//
// [Client.Run] calls a plain entrypoint and returns its [Result]; the
// value arrives as a RunAgent "structured string" and is decoded to plain
// JSON, which [Result.Decode] unmarshals. [Client.Stream] (WebSocket) and
// [Client.StreamSSE] (Server-Sent Events) run a streaming entrypoint, one
// whose tag ends in "_stream", and return a [Stream] read with Next/Value/
// Err like a [bufio.Scanner], or with the [Stream.All] iterator:
//
//	for chunk, err := range s.All() {
//		if err != nil {
//			return err
//		}
//		fmt.Println(string(chunk))
//	}
//
// # Background runs and rejoining streams
//
// [Client.RunAsync] starts a run that goes on without its caller and
// returns its invocation id; [Client.WaitInvocation] long-polls its record
// until it ends (one call waits at most [MaxWait]; call again to wait
// longer); [Client.CancelInvocation] stops it. A stream asked to go on
// without its client ([RunRequest.OnDisconnect] = [OnDisconnectContinue])
// and any stream whose connection dropped are followed again with
// [Client.Rejoin] from the last chunk read, [Stream.LastEventID], so that
// no chunk is lost or repeated.
//
// # Deadlines
//
// Every call is bounded by its context. A context without a deadline gets
// one: [DefaultRunTimeout] (300 s) for Run and the other REST calls,
// [DefaultStreamTimeout] (600 s) for a whole stream, as in RunAgent's SDKs.
// A context with a deadline, longer or shorter, overrides the default.
//
// # Errors
//
// A failure the server reports — a non-2xx response, an envelope with
// success:false, an error frame in a stream — is an [*Error] carrying the
// HTTP status, the error code ("NOT_FOUND", "AGENT_ERROR", …), message,
// field, details and request id; [IsNotFound] and [IsCode] test for it.
// A failure inside the agent (AGENT_ERROR, AGENT_TIMEOUT) comes, as from
// RunAgent, with HTTP 200 and success:false: it is an [*Error] all the
// same. A stream's error frame may hold the message as a string with the
// code beside it (RunAgent's shape) or the error object; both are read. A
// non-2xx answer without an envelope (a proxy's error page) is an [*Error]
// with an empty Code. Transport failures wrap the underlying error, so
// errors.Is(err, context.DeadlineExceeded) works. A stream that ends
// before the server reports stream_completed is an error wrapping
// [io.ErrUnexpectedEOF]; a Stream never ends silently short.
package client
