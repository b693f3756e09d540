package server

import (
	"context"
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
