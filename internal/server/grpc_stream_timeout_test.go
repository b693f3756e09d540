package server

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/translate/grpc/grpctest"
	"google.golang.org/grpc"
)

// A bidirectional stream on a route without a request timeout outlives server.read_timeout,
// which net/http's HTTP/2 server would otherwise apply to the stream's request body.
func TestGRPCStreamOutlivesReadTimeout(t *testing.T) {
	be := grpctest.Start(t)
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}", h2c: true }]
server: { access_log: { enabled: false }, read_timeout: 300ms }
services:
  - { name: users, protocol: h2c, targets: [{ url: "http://${GRPC}" }] }
routes:
  - { name: passthrough, match: { path: /users.v1.UserService/** }, service: users, timeouts: { request: 0s } }
`, map[string]string{"GRPC": be.Addr})
	cc := grpcClient(t, g.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	chat, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/users.v1.UserService/Chat")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if i > 0 {
			time.Sleep(250 * time.Millisecond) // 1s in all: over three read timeouts
		}
		if err := chat.SendMsg(msg(t, "users.v1.ChatMessage", `{"text":"hi"}`)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if err := chat.RecvMsg(msg(t, "users.v1.ChatMessage", "")); err != nil {
			t.Fatalf("message %d, %v into the stream: %v", i, time.Duration(i)*250*time.Millisecond, err)
		}
	}
	_ = chat.CloseSend()
}

// A transcoded route answers 413 to a body over max_body_bytes whatever its framing; a
// Content-Length over the limit was refused at the edge, a chunked body in the transcoder (400).
func TestTranscodedBodyTooLarge(t *testing.T) {
	be := grpctest.Start(t)
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false }, max_body_bytes: 1KiB }
services:
  - { name: users, protocol: h2c, targets: [{ url: "http://${GRPC}" }] }
routes:
  - name: rest
    match: { path: /v1/** }
    service: users
    grpc: { descriptors: "${DESCRIPTORS}", service: users.v1.UserService }
`, map[string]string{"GRPC": be.Addr, "DESCRIPTORS": grpctest.WriteDescriptorSet(t)})
	big := `{"name":"` + strings.Repeat("x", 3000) + `"}`
	for _, framing := range []string{"Content-Length: " + strconv.Itoa(len(big)), "Transfer-Encoding: chunked"} {
		body := big
		if strings.HasPrefix(framing, "Transfer") {
			body = strconv.FormatInt(int64(len(big)), 16) + "\r\n" + big + "\r\n0\r\n\r\n"
		}
		got := g.raw(t, "POST /v1/users HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nConnection: close\r\n"+framing+"\r\n\r\n"+body)
		if !strings.HasPrefix(got, "HTTP/1.1 413 ") {
			t.Errorf("%s: %q, want 413", framing, firstLine(got))
		}
	}
}
