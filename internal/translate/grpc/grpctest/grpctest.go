// Package grpctest runs a real gRPC server for tests: users.v1.UserService, compiled from a small
// .proto at test time (pure Go, no protoc) and served with dynamic messages over h2c, with
// server reflection (v1). It also writes the schema as a descriptor set file.
package grpctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	_ "google.golang.org/genproto/googleapis/api/annotations" // registers google/api/*.proto
)

// Proto is the test service's schema.
const Proto = `syntax = "proto3";
package users.v1;

import "google/api/annotations.proto";
import "google/protobuf/timestamp.proto";

service UserService {
  rpc GetUser(GetUserRequest) returns (User) { option (google.api.http) = { get: "/v1/users/{id}" }; }
  rpc CreateUser(CreateUserRequest) returns (User) {
    option (google.api.http) = { post: "/v1/users" body: "user" additional_bindings { put: "/v1/users:create" body: "*" } };
  }
  rpc SearchUsers(GetUserRequest) returns (User) { option (google.api.http) = { get: "/v1/users:search" response_body: "display_name" }; }
  rpc ListUsers(ListUsersRequest) returns (stream User) { option (google.api.http) = { get: "/v1/users" }; }
  rpc Sleep(SleepRequest) returns (SleepReply) { option (google.api.http) = { post: "/v1/sleep" body: "*" }; }
  rpc Chat(stream ChatMessage) returns (stream ChatMessage);
}

enum Role {
  ROLE_UNSPECIFIED = 0;
  ROLE_ADMIN = 1;
}

message GetUserRequest {
  string id = 1;
  bool verbose = 2;
  repeated string fields = 3;
}

message User {
  string id = 1;
  string display_name = 2;
  repeated string tags = 3;
  int32 age = 4;
  google.protobuf.Timestamp created_at = 5;
  Role role = 6;
}

message CreateUserRequest {
  User user = 1;
  string request_id = 2;
}

message ListUsersRequest {
  int32 limit = 1;
  string prefix = 2;
  int32 fail_after = 3;
}

message SleepRequest { int64 millis = 1; }
message SleepReply { bool done = 1; string deadline = 2; }
message ChatMessage { string text = 1; }
`

// ServiceName is the test service's full name.
const ServiceName = "users.v1.UserService"

// Compile compiles Proto and returns its file with every import.
func Compile(t testing.TB) *protoregistry.Files {
	t.Helper()
	files, _ := compile(t)
	return files
}

func compile(t testing.TB) (*protoregistry.Files, []*descriptorpb.FileDescriptorProto) {
	t.Helper()
	global := protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(path)
		if err != nil {
			return protocompile.SearchResult{}, err
		}
		return protocompile.SearchResult{Desc: fd}, nil
	})
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(protocompile.CompositeResolver{
		&protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(map[string]string{"users/v1/users.proto": Proto})},
		global,
	})}
	linked, err := c.Compile(context.Background(), "users/v1/users.proto")
	if err != nil {
		t.Fatalf("compile proto: %v", err)
	}
	// Every file, imports first, as protoc --include_imports writes them.
	var fds []*descriptorpb.FileDescriptorProto
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := 0; i < fd.Imports().Len(); i++ {
			add(fd.Imports().Get(i).FileDescriptor)
		}
		fds = append(fds, protodesc.ToFileDescriptorProto(fd))
	}
	add(linked[0])
	files, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: fds})
	if err != nil {
		t.Fatalf("link proto: %v", err)
	}
	return files, fds
}

// WriteDescriptorSet writes the schema as a FileDescriptorSet file in a temporary directory and
// returns its path.
func WriteDescriptorSet(t testing.TB) string {
	t.Helper()
	_, fds := compile(t)
	data, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: fds})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users.pb")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Server is a running test gRPC server.
type Server struct {
	// Addr is host:port of the h2c listener.
	Addr string
	srv  *grpc.Server
	mu   sync.Mutex
	md   []metadata.MD
}

// Metadata returns the metadata of every call received so far.
func (s *Server) Metadata() []metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]metadata.MD(nil), s.md...)
}

// Stop stops the server at once.
func (s *Server) Stop() { s.srv.Stop() }

// Start serves the test service (and reflection) on a free loopback port until the test ends.
//
// Behaviour: GetUser answers User{id, display_name "User <id>", tags [a, b], age 42, role
// ROLE_ADMIN}, NOT_FOUND for id "missing", INVALID_ARGUMENT for id "bad", and with verbose
// adds a tag "md:<key>=<value>" per incoming authorization / x-tenant value.
// CreateUser echoes the user with id "new-<display_name>". SearchUsers answers like GetUser.
// ListUsers streams limit users "<prefix>1"..., failing with UNAVAILABLE after fail_after
// messages when set (-1: before the first). Sleep waits millis (or until the deadline: DEADLINE_EXCEEDED). Chat
// echoes each message as "echo: <text>".
func Start(t testing.TB) *Server {
	t.Helper()
	return StartAt(t, "127.0.0.1:0")
}

// StartAt is Start on a given address.
func StartAt(t testing.TB, addr string) *Server {
	t.Helper()
	files := Compile(t)
	d, err := files.FindDescriptorByName(ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	sd := d.(protoreflect.ServiceDescriptor)
	s := &Server{}
	desc := grpc.ServiceDesc{ServiceName: ServiceName, HandlerType: (*any)(nil), Metadata: "users/v1/users.proto"}
	for i := 0; i < sd.Methods().Len(); i++ {
		md := sd.Methods().Get(i)
		name := string(md.Name())
		if md.IsStreamingClient() || md.IsStreamingServer() {
			desc.Streams = append(desc.Streams, grpc.StreamDesc{StreamName: name, ServerStreams: md.IsStreamingServer(),
				ClientStreams: md.IsStreamingClient(), Handler: func(_ any, stream grpc.ServerStream) error {
					s.record(stream.Context())
					return s.stream(md, stream)
				}})
			continue
		}
		desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: name,
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := dynamicpb.NewMessage(md.Input())
				if err := dec(in); err != nil {
					return nil, err
				}
				s.record(ctx)
				return s.unary(ctx, md, in)
			}})
	}
	s.srv = grpc.NewServer()
	s.srv.RegisterService(&desc, struct{}{})
	reflectionv1.RegisterServerReflectionServer(s.srv, reflection.NewServerV1(reflection.ServerOptions{Services: s.srv, DescriptorResolver: files}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.srv.Stop()
		<-done
	})
	return s
}

func (s *Server) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	s.md = append(s.md, md)
	s.mu.Unlock()
}

func field(m protoreflect.Message, name string) protoreflect.Value {
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(name)))
}

func set(m protoreflect.Message, name string, v protoreflect.Value) {
	m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(name)), v)
}

func user(md protoreflect.MessageDescriptor, id string) *dynamicpb.Message {
	u := dynamicpb.NewMessage(md)
	set(u, "id", protoreflect.ValueOfString(id))
	set(u, "display_name", protoreflect.ValueOfString("User "+id))
	tags := u.Mutable(md.Fields().ByName("tags")).List()
	tags.Append(protoreflect.ValueOfString("a"))
	tags.Append(protoreflect.ValueOfString("b"))
	set(u, "age", protoreflect.ValueOfInt32(42))
	set(u, "role", protoreflect.ValueOfEnum(1))
	return u
}

func (s *Server) unary(ctx context.Context, md protoreflect.MethodDescriptor, in *dynamicpb.Message) (any, error) {
	switch md.Name() {
	case "GetUser", "SearchUsers":
		id := field(in, "id").String()
		switch id {
		case "missing":
			return nil, status.Errorf(codes.NotFound, "user %s not found", id)
		case "bad":
			return nil, status.Error(codes.InvalidArgument, "id must not be bad")
		}
		u := user(md.Output(), id)
		if field(in, "verbose").Bool() {
			incoming, _ := metadata.FromIncomingContext(ctx)
			tags := u.Mutable(md.Output().Fields().ByName("tags")).List()
			for _, k := range []string{"authorization", "x-tenant"} {
				for _, v := range incoming.Get(k) {
					tags.Append(protoreflect.ValueOfString("md:" + k + "=" + v))
				}
			}
			fields := field(in, "fields").List()
			for i := 0; i < fields.Len(); i++ {
				tags.Append(protoreflect.ValueOfString("field:" + fields.Get(i).String()))
			}
		}
		return u, nil
	case "CreateUser":
		u := dynamicpb.NewMessage(md.Output())
		if src := field(in, "user").Message(); src.IsValid() {
			proto.Merge(u, src.Interface())
		}
		set(u, "id", protoreflect.ValueOfString("new-"+field(u, "display_name").String()))
		return u, nil
	case "Sleep":
		out := dynamicpb.NewMessage(md.Output())
		if dl, ok := ctx.Deadline(); ok {
			set(out, "deadline", protoreflect.ValueOfString(time.Until(dl).Round(time.Second).String()))
		}
		select {
		case <-time.After(time.Duration(field(in, "millis").Int()) * time.Millisecond):
			set(out, "done", protoreflect.ValueOfBool(true))
			return out, nil
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil, status.Errorf(codes.Unimplemented, "method %s", md.Name())
}

func (s *Server) stream(md protoreflect.MethodDescriptor, stream grpc.ServerStream) error {
	switch md.Name() {
	case "ListUsers":
		in := dynamicpb.NewMessage(md.Input())
		if err := stream.RecvMsg(in); err != nil {
			return err
		}
		limit, failAfter := int(field(in, "limit").Int()), int(field(in, "fail_after").Int())
		for i := 1; i <= limit; i++ {
			if failAfter != 0 && i > failAfter {
				return status.Error(codes.Unavailable, "backend exploded")
			}
			if err := stream.SendMsg(user(md.Output(), fmt.Sprintf("%s%d", field(in, "prefix").String(), i))); err != nil {
				return err
			}
		}
		return nil
	case "Chat":
		for {
			in := dynamicpb.NewMessage(md.Input())
			if err := stream.RecvMsg(in); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			out := dynamicpb.NewMessage(md.Output())
			set(out, "text", protoreflect.ValueOfString("echo: "+field(in, "text").String()))
			if err := stream.SendMsg(out); err != nil {
				return err
			}
		}
	}
	return status.Errorf(codes.Unimplemented, "method %s", md.Name())
}
