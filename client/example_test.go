package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/runagent/runagent/client"
)

// structuredString encodes v as RunAgent's "structured string", the way
// the server sends results and chunks.
func structuredString(typ string, v any) string {
	payload, _ := json.Marshal(v)
	s, _ := json.Marshal(map[string]string{"type": typ, "payload": string(payload)})
	return string(s)
}

func ExampleClient_Run() {
	// This httptest server stands in for `runagent serve`: it answers
	// POST /api/v1/agents/{agent_id}/run with the envelope of docs/api.md.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Tag    string         `json:"entrypoint_tag"`
			Kwargs map[string]any `json:"input_kwargs"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		reply := map[string]any{"reply": fmt.Sprintf("%s: hello, %v", req.Tag, req.Kwargs["name"])}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"success": true, "data": structuredString("object", reply), "message": nil, "error": nil,
			"timestamp": "2026-11-24T15:00:00.000000Z", "request_id": "req_1", "invocation_id": "inv_1",
		})
	}))
	defer srv.Close()

	c, err := client.New(srv.URL, client.WithAPIKey("rk_example"))
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Run(context.Background(), "my-agent", client.RunRequest{
		Tag:    "chat",
		Kwargs: map[string]any{"name": "Ada"},
	})
	if err != nil {
		log.Fatal(err)
	}
	var out struct {
		Reply string `json:"reply"`
	}
	if err := res.Decode(&out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Reply)
	fmt.Println(string(res.Value), res.InvocationID)
	// Output:
	// chat: hello, Ada
	// {"reply":"chat: hello, Ada"} inv_1
}

func ExampleClient_Stream() {
	// This httptest server stands in for `runagent serve`: it answers the
	// run-stream WebSocket with the frames of docs/api.md.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx := r.Context()
		if _, _, err := conn.Read(ctx); err != nil { // the run request
			return
		}
		send := func(v any) {
			b, _ := json.Marshal(v)
			conn.Write(ctx, websocket.MessageText, b)
		}
		send(map[string]any{"type": "status", "status": "stream_started", "invocation_id": "inv_1"})
		for _, word := range []string{"Once", "upon", "a time"} {
			send(map[string]any{"type": "data", "content": structuredString("string", word)})
		}
		send(map[string]any{"type": "status", "status": "stream_completed", "total_chunks": 3, "execution_time": 0.5, "invocation_id": "inv_1"})
		conn.Close(websocket.StatusNormalClosure, "")
	}))
	defer srv.Close()

	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.Stream(context.Background(), "my-agent", client.RunRequest{Tag: "story_stream"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for s.Next() {
		var word string
		json.Unmarshal(s.Value(), &word)
		fmt.Println(word)
	}
	if err := s.Err(); err != nil {
		log.Fatal(err)
	}
	sum, _ := s.Summary()
	fmt.Printf("%d chunks in %v (invocation %s)\n", sum.TotalChunks, sum.ExecutionTime, s.InvocationID())
	// Output:
	// Once
	// upon
	// a time
	// 3 chunks in 500ms (invocation inv_1)
}

func ExampleStream_All() {
	// This httptest server stands in for `runagent serve`: it answers
	// POST /api/v1/agents/{agent_id}/run-stream with Server-Sent Events.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: status\ndata: {\"type\": \"status\", \"status\": \"stream_started\", \"invocation_id\": \"inv_1\"}\n\n")
		for i := 1; i <= 3; i++ {
			data, _ := json.Marshal(map[string]any{"type": "data", "content": structuredString("integer", i)})
			fmt.Fprintf(w, "event: data\nid: %d\ndata: %s\n\n", i-1, data)
		}
		io.WriteString(w, "event: status\ndata: {\"type\": \"status\", \"status\": \"stream_completed\", \"total_chunks\": 3, \"execution_time\": 0.01, \"invocation_id\": \"inv_1\"}\n\n")
	}))
	defer srv.Close()

	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.StreamSSE(context.Background(), "my-agent", client.RunRequest{Tag: "count_stream"})
	if err != nil {
		log.Fatal(err)
	}
	for chunk, err := range s.All() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(chunk))
	}
	// Output:
	// 1
	// 2
	// 3
}

func ExampleClient_RunAsync() {
	// This httptest server stands in for `runagent serve`: the run is
	// accepted with 202 and its record, read with ?wait=, says how it
	// ended.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/agents/my-agent/run", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/api/v1/invocations/inv_1")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]any{"success": true, "data": nil, "invocation_id": "inv_1"})
	})
	mux.HandleFunc("GET /api/v1/invocations/inv_1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"success": true, "data": map[string]any{
			"invocation_id": "inv_1", "status": "completed", "output": map[string]any{"summary": "done"},
		}})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	id, err := c.RunAsync(ctx, "my-agent", client.RunRequest{Tag: "report"})
	if err != nil {
		log.Fatal(err)
	}
	inv, err := c.WaitInvocation(ctx, id, 30*time.Second)
	for err == nil && !inv.Ended() {
		inv, err = c.WaitInvocation(ctx, id, 30*time.Second)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inv.ID, inv.Status, string(inv.Output))
	// Output:
	// inv_1 completed {"summary":"done"}
}

func ExampleClient_Rejoin() {
	// This httptest server stands in for `runagent serve`: it keeps a
	// stream's chunks, numbered from 0, and sends those after the
	// Last-Event-ID the client gives.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.Header.Get("Last-Event-ID"))
		w.Header().Set("Content-Type", "text/event-stream")
		for i := after + 1; i < 4; i++ {
			data, _ := json.Marshal(map[string]any{"type": "data", "content": structuredString("integer", i)})
			fmt.Fprintf(w, "event: data\nid: %d\ndata: %s\n\n", i, data)
		}
		io.WriteString(w, "event: status\ndata: {\"type\": \"status\", \"status\": \"stream_completed\", \"total_chunks\": 4}\n\n")
	}))
	defer srv.Close()

	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	// The caller had read chunks 0 and 1 when its connection dropped.
	s, err := c.Rejoin(context.Background(), "inv_1", 1)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for s.Next() {
		fmt.Println(string(s.Value()), "id", s.LastEventID())
	}
	if err := s.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 2 id 2
	// 3 id 3
}
