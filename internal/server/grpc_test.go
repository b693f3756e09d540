package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/runtime"
	"github.com/gatehouse/gatehouse/internal/translate/grpc/grpctest"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// grpcYAML proxies gRPC clients as they are (/users.v1.UserService/**) and transcodes REST in
// three ways: by the google.api.http annotations from a descriptor set file, by annotations
// from reflection, and by explicit routes.
const grpcYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - name: users
    protocol: h2c
    targets: [{ url: "http://${GRPC}" }]
    timeouts: { response_header: 5s }
routes:
  - name: passthrough
    match: { path: /users.v1.UserService/** }
    service: users
    timeouts: { request: 0s }
  - name: rest-annotations
    match: { path: /v1/** }
    service: users
    grpc: { descriptors: "${DESCRIPTORS}", service: users.v1.UserService, forward_headers: [Authorization] }
  - name: rest-reflection
    match: { path: /reflect/v1/** }
    service: users
    grpc: { reflection: true, method: users.v1.UserService/ListUsers }
  - name: explicit
    match: { path: "/api/users/{id}/lookup", methods: [POST] }
    service: users
    grpc: { reflection: true, method: users.v1.UserService/GetUser, field_names: proto, emit_unpopulated: true, forward_headers: [X-Tenant] }
  - name: explicit-response-body
    match: { path: "/api/users/{id}/name", methods: [GET] }
    service: users
    grpc: { descriptors: "${DESCRIPTORS}", method: users.v1.UserService/GetUser, response_body: display_name }
  - name: sleep
    match: { path: /api/sleep, methods: [POST] }
    service: users
    timeouts: { request: 300ms }
    grpc: { descriptors: "${DESCRIPTORS}", method: users.v1.UserService/Sleep }
`

// h2cGateway serves a compiled Runtime on a listener that accepts HTTP/1.1 and cleartext
// HTTP/2 (as a listener with h2c: true does), so gRPC clients can reach it without TLS.
func h2cGateway(t *testing.T, yaml string, env map[string]string) (addr string, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	env["LISTEN"] = "127.0.0.1:0"
	cfg, err := config.Load("grpc.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	reg := upstream.NewRegistry()
	rt, err := runtime.Compile(cfg, runtime.Deps{Registry: reg, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: rt, Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		rt.Close()
	})
	return ln.Addr().String(), logs
}

// grpcClient dials the gateway over h2c.
func grpcClient(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// msg builds a dynamic message of a test-service type from JSON.
func msg(t *testing.T, name, js string) *dynamicpb.Message {
	t.Helper()
	d, err := grpctest.Compile(t).FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor))
	if js != "" {
		if err := protojson.Unmarshal([]byte(js), m); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func jsonOf(t *testing.T, m *dynamicpb.Message) string {
	t.Helper()
	b, err := protojson.MarshalOptions{}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	_ = json.Unmarshal(b, &v)
	out, _ := json.Marshal(v) // compact and stable
	return string(out)
}

func startGRPCGateway(t *testing.T) (*grpctest.Server, string) {
	t.Helper()
	be := grpctest.Start(t)
	addr, _ := h2cGateway(t, grpcYAML, map[string]string{"GRPC": be.Addr, "DESCRIPTORS": grpctest.WriteDescriptorSet(t)})
	return be, addr
}

func TestGRPCPassthroughUnaryAndErrors(t *testing.T) {
	be, addr := startGRPCGateway(t)
	cc := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	out := msg(t, "users.v1.User", "")
	var trailer metadata.MD
	if err := cc.Invoke(ctx, "/users.v1.UserService/GetUser", msg(t, "users.v1.GetUserRequest", `{"id":"7"}`), out, grpc.Trailer(&trailer)); err != nil {
		t.Fatalf("GetUser through the gateway: %v", err)
	}
	if got := jsonOf(t, out); got != `{"age":42,"displayName":"User 7","id":"7","role":"ROLE_ADMIN","tags":["a","b"]}` {
		t.Errorf("GetUser = %s", got)
	}
	// The upstream got the request ID the gateway assigned.
	if md := be.Metadata(); len(md) == 0 || len(md[len(md)-1].Get("x-request-id")) != 1 {
		t.Errorf("upstream metadata lacks x-request-id: %v", md)
	}

	// A gRPC error keeps its status and message (they travel in the trailers).
	err := cc.Invoke(ctx, "/users.v1.UserService/GetUser", msg(t, "users.v1.GetUserRequest", `{"id":"missing"}`), msg(t, "users.v1.User", ""))
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "user missing not found" {
		t.Errorf("missing user: %v, want NotFound with the server's message", err)
	}

	// No route for the method: gRPC clients read the 404 as UNIMPLEMENTED.
	err = cc.Invoke(ctx, "/other.Service/Call", msg(t, "users.v1.GetUserRequest", ""), msg(t, "users.v1.User", ""))
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("unknown service: %v, want Unimplemented", err)
	}
}

func TestGRPCPassthroughUpstreamDownIsGRPCError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	addr, _ := h2cGateway(t, grpcYAML, map[string]string{"GRPC": dead, "DESCRIPTORS": grpctest.WriteDescriptorSet(t)})
	cc := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = cc.Invoke(ctx, "/users.v1.UserService/GetUser", msg(t, "users.v1.GetUserRequest", `{"id":"1"}`), msg(t, "users.v1.User", ""))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "upstream") {
		t.Fatalf("upstream down: %v, want Unavailable with the gateway's message (not a JSON 502)", err)
	}
}

func TestGRPCPassthroughStreaming(t *testing.T) {
	_, addr := startGRPCGateway(t)
	cc := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// Server streaming, ending in an error status after two messages.
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/users.v1.UserService/ListUsers")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(msg(t, "users.v1.ListUsersRequest", `{"limit":5,"prefix":"u","failAfter":2}`)); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	var ids []string
	for {
		u := msg(t, "users.v1.User", "")
		if err = st.RecvMsg(u); err != nil {
			break
		}
		ids = append(ids, u.Get(u.Descriptor().Fields().ByName("id")).String())
	}
	if strings.Join(ids, ",") != "u1,u2" || status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "backend exploded" {
		t.Errorf("stream = %v then %v, want u1,u2 then Unavailable 'backend exploded'", ids, err)
	}

	// Bidirectional streaming: each reply arrives before the next request is sent.
	chat, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/users.v1.UserService/Chat")
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"one", "two", "three"} {
		if err := chat.SendMsg(msg(t, "users.v1.ChatMessage", `{"text":"`+text+`"}`)); err != nil {
			t.Fatal(err)
		}
		reply := msg(t, "users.v1.ChatMessage", "")
		if err := chat.RecvMsg(reply); err != nil {
			t.Fatalf("chat %s: %v", text, err)
		}
		if got := reply.Get(reply.Descriptor().Fields().ByName("text")).String(); got != "echo: "+text {
			t.Errorf("chat reply = %q", got)
		}
	}
	_ = chat.CloseSend()
	if err := chat.RecvMsg(msg(t, "users.v1.ChatMessage", "")); !errors.Is(err, io.EOF) {
		t.Errorf("chat end = %v, want EOF (status OK)", err)
	}
}

func TestGRPCPassthroughDeadline(t *testing.T) {
	be := grpctest.Start(t)
	addr, logs := h2cGateway(t, grpcYAML, map[string]string{"GRPC": be.Addr, "DESCRIPTORS": grpctest.WriteDescriptorSet(t)})
	defer func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	}()
	cc := grpcClient(t, addr)
	out := msg(t, "users.v1.SleepReply", "")
	// The server sees the client's deadline (grpc-timeout is forwarded). This first call also
	// establishes the connection, so the short deadline below measures the call, not a dial on
	// a busy machine.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if err := cc.Invoke(ctx2, "/users.v1.UserService/Sleep", msg(t, "users.v1.SleepRequest", `{"millis":"1"}`), out); err != nil {
		t.Fatal(err)
	}
	if got := out.Get(out.Descriptor().Fields().ByName("deadline")).String(); got != "30s" {
		t.Errorf("deadline seen by the server = %q, want 30s", got)
	}

	// A deadline beyond what a Duration holds is sent as the saturated "2562047H": it is no
	// deadline, not one already passed.
	ctx3, cancel3 := context.WithDeadline(context.Background(), time.Now().AddDate(300, 0, 0))
	defer cancel3()
	if err := cc.Invoke(ctx3, "/users.v1.UserService/Sleep", msg(t, "users.v1.SleepRequest", `{"millis":"1"}`), out); err != nil {
		t.Fatalf("a 300-year deadline: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := cc.Invoke(ctx, "/users.v1.UserService/Sleep", msg(t, "users.v1.SleepRequest", `{"millis":"3000"}`), out)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("sleep past the deadline: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the deadline was not honoured: %v", d)
	}
}

// restCall makes an HTTP/1.1 request to the gateway.
func restCall(t *testing.T, method, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestGRPCTranscodingAnnotations(t *testing.T) {
	_, addr := startGRPCGateway(t)
	base := "http://" + addr
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		want                     string // exact body, or the error code for errors
	}{
		{"get with path param", "GET", "/v1/users/42", "", nil, 200,
			`{"id":"42","displayName":"User 42","tags":["a","b"],"age":42,"role":"ROLE_ADMIN"}`},
		{"query params, repeated field and forwarded header", "GET", "/v1/users/9?verbose=true&fields=a&fields=b", "", []string{"Authorization", "Bearer t"}, 200,
			`{"id":"9","displayName":"User 9","tags":["a","b","md:authorization=Bearer t","field:a","field:b"],"age":42,"role":"ROLE_ADMIN"}`},
		{"body field", "POST", "/v1/users", `{"displayName":"ann","age":7}`, nil, 200,
			`{"id":"new-ann","displayName":"ann","age":7}`},
		{"additional binding with custom verb, whole body", "PUT", "/v1/users:create", `{"user":{"display_name":"bob"}}`, nil, 200,
			`{"id":"new-bob","displayName":"bob"}`},
		{"response_body annotation", "GET", "/v1/users:search?id=5", "", nil, 200, `"User 5"`},
		{"not found maps to 404", "GET", "/v1/users/missing", "", nil, 404, "not_found"},
		{"invalid argument maps to 400", "GET", "/v1/users/bad", "", nil, 400, "invalid_argument"},
		{"bad query value", "GET", "/v1/users/1?verbose=maybe", "", nil, 400, "bad_request"},
		{"unknown body field", "POST", "/v1/users", `{"nope":1}`, nil, 400, "bad_request"},
		{"unmapped path", "GET", "/v1/nothing/here", "", nil, 404, "not_found"},
		{"wrong method", "DELETE", "/v1/users/1", "", nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := restCall(t, tt.method, base+tt.path, tt.body, tt.hdr...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == 200 {
				if !sameJSON(body, tt.want) { // protojson varies its whitespace on purpose
					t.Errorf("body = %s\nwant   %s", body, tt.want)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				return
			}
			if e := decodeError(t, resp, body); e.Error != tt.want {
				t.Errorf("error = %+v, want code %q", e, tt.want)
			}
		})
	}
}

func TestGRPCTranscodingExplicitRoutes(t *testing.T) {
	be, addr := startGRPCGateway(t)
	base := "http://" + addr
	// Path parameter from the route's match, body into the whole message, proto field names,
	// zero values emitted, X-Tenant forwarded as metadata.
	resp, body := restCall(t, "POST", base+"/api/users/3/lookup", `{"verbose":true}`, "X-Tenant", "t-1")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := `{"id":"3", "display_name":"User 3", "tags":["a", "b", "md:x-tenant=t-1"], "age":42, "created_at":null, "role":"ROLE_ADMIN"}`
	if !sameJSON(body, want) {
		t.Errorf("lookup = %s\nwant %s", body, want)
	}
	if md := be.Metadata(); len(md[len(md)-1].Get("x-request-id")) != 1 {
		t.Errorf("x-request-id not forwarded: %v", md[len(md)-1])
	}
	// response_body picks one field.
	if resp, body := restCall(t, "GET", base+"/api/users/8/name", ""); resp.StatusCode != 200 || !sameJSON(body, `"User 8"`) {
		t.Errorf("name = %d %s", resp.StatusCode, body)
	}
}

func TestGRPCTranscodingServerStream(t *testing.T) {
	_, addr := startGRPCGateway(t)
	base := "http://" + addr
	resp, body := restCall(t, "GET", base+"/reflect/v1/anything?limit=3&prefix=p", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("stream: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 3 || !strings.Contains(compactJSON(lines[0]), `"id":"p1"`) || !strings.Contains(compactJSON(lines[2]), `"id":"p3"`) {
		t.Errorf("stream lines = %q", lines)
	}
	// An error after the first message ends the stream with an error line.
	_, body = restCall(t, "GET", base+"/reflect/v1/x?limit=3&failAfter=1", "")
	lines = strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 2 || !sameJSON(lines[1], `{"error":{"code":503,"status":"UNAVAILABLE","message":"backend exploded"}}`) {
		t.Errorf("failing stream = %q", lines)
	}
	// An error before any message is a plain error response.
	resp, body = restCall(t, "GET", base+"/reflect/v1/x?limit=3&failAfter=-1", "")
	if resp.StatusCode != http.StatusServiceUnavailable || decodeError(t, resp, body).Error != "unavailable" {
		t.Errorf("stream failing at once = %d %s", resp.StatusCode, body)
	}
	// An empty stream is an empty 200.
	resp, body = restCall(t, "GET", base+"/reflect/v1/x?limit=0", "")
	if resp.StatusCode != 200 || strings.TrimSpace(body) != "" {
		t.Errorf("empty stream = %d %q", resp.StatusCode, body)
	}
}

func TestGRPCTranscodingDeadline(t *testing.T) {
	_, addr := startGRPCGateway(t)
	start := time.Now()
	resp, body := restCall(t, "POST", "http://"+addr+"/api/sleep", `{"millis":"3000"}`)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status = %d, want 504: %s", resp.StatusCode, body)
	}
	if e := decodeError(t, resp, body); e.Error != "deadline_exceeded" && e.Error != "gateway_timeout" {
		t.Errorf("error = %+v", e)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("route timeout not applied: %v", d)
	}
	if resp, body := restCall(t, "POST", "http://"+addr+"/api/sleep", `{"millis":"1"}`); resp.StatusCode != 200 || !strings.Contains(compactJSON(body), `"done":true`) {
		t.Errorf("short sleep = %d %s", resp.StatusCode, body)
	}
}

// TestGRPCReflectionLoadedLater: a gateway started while the gRPC server is down serves 503 on
// the reflection route and picks the schema up once the server is there.
func TestGRPCReflectionLoadedLater(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr := ln.Addr().String()
	_ = ln.Close()
	addr, logs := h2cGateway(t, grpcYAML, map[string]string{"GRPC": grpcAddr, "DESCRIPTORS": grpctest.WriteDescriptorSet(t)})
	if !strings.Contains(logs.String(), "grpc schema not loaded") {
		t.Errorf("no warning about the missing schema: %s", logs)
	}
	resp, body := restCall(t, "GET", "http://"+addr+"/reflect/v1/x?limit=1", "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("before the server is up: %d %s", resp.StatusCode, body)
	}
	_ = grpctest.StartAt(t, grpcAddr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body = restCall(t, "GET", "http://"+addr+"/reflect/v1/x?limit=1&prefix=late", "")
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("schema never loaded: %d %s", resp.StatusCode, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !strings.Contains(compactJSON(body), `"id":"late1"`) {
		t.Errorf("body = %s", body)
	}
}

func TestGRPCCompileErrors(t *testing.T) {
	be := grpctest.Start(t)
	desc := grpctest.WriteDescriptorSet(t)
	junk := filepath.Join(t.TempDir(), "junk.pb") // readable, so validation lets it through
	if err := os.WriteFile(junk, []byte("not a descriptor set"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, grpc, want string }{
		{"unknown method", `{ descriptors: "` + desc + `", method: users.v1.UserService/Nope }`, "has no method Nope"},
		{"client streaming", `{ descriptors: "` + desc + `", method: users.v1.UserService/Chat }`, "client-streaming"},
		{"bad descriptor file", `{ descriptors: "` + junk + `", method: users.v1.UserService/GetUser }`, "descriptor set"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yaml := `
version: 1
listeners: [{ name: public, address: "127.0.0.1:0" }]
services: [{ name: users, protocol: h2c, targets: [{ url: "http://` + be.Addr + `" }] }]
routes: [{ name: r, match: { path: /x/** }, service: users, grpc: ` + tt.grpc + ` }]
`
			cfg, err := config.Load("t.yaml", []byte(yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			rt, err := runtime.Compile(cfg, runtime.Deps{Registry: upstream.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				rt.Close()
				t.Fatal("compile succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// compactJSON re-encodes one JSON value without whitespace (protojson varies its spacing).
func compactJSON(s string) string {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
