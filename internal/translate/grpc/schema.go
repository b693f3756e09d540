package grpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/gatehouse/gatehouse/internal/translate/grpc/wire"
	"github.com/gatehouse/gatehouse/internal/upstream"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// The google.api.http extension must be registered to be read from method options.
	_ "google.golang.org/genproto/googleapis/api/annotations"
)

// maxSchemaBytes bounds a descriptor set file and a reflection answer.
const maxSchemaBytes = 64 << 20

// LoadDescriptorSet reads a FileDescriptorSet file (protoc --include_imports -o).
func LoadDescriptorSet(path string) (*protoregistry.Files, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("descriptor set: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("descriptor set %s: not a FileDescriptorSet: %w", path, err)
	}
	files, err := buildFiles(set.File)
	if err != nil {
		return nil, fmt.Errorf("descriptor set %s: %w", path, err)
	}
	return files, nil
}

// buildFiles links file descriptors in dependency order. Imports missing from fds (protoc run
// without --include_imports, or a reflection server that does not serve well-known files) are
// taken from the descriptors linked into the gateway (google/protobuf/*, google/api/*).
func buildFiles(fds []*descriptorpb.FileDescriptorProto) (*protoregistry.Files, error) {
	byName := map[string]*descriptorpb.FileDescriptorProto{}
	for _, fd := range fds {
		byName[fd.GetName()] = fd
	}
	files := new(protoregistry.Files)
	resolver := chainResolver{files}
	visiting := map[string]bool{}
	var add func(name string) error
	add = func(name string) error {
		if _, err := files.FindFileByPath(name); err == nil {
			return nil
		}
		fd, ok := byName[name]
		if !ok {
			if _, err := protoregistry.GlobalFiles.FindFileByPath(name); err == nil {
				return nil
			}
			return fmt.Errorf("file %q is imported but missing (build the set with --include_imports)", name)
		}
		if visiting[name] {
			return fmt.Errorf("import cycle through %q", name)
		}
		visiting[name] = true
		for _, dep := range fd.GetDependency() {
			if err := add(dep); err != nil {
				return err
			}
		}
		f, err := protodesc.NewFile(fd, resolver)
		if err != nil {
			return fmt.Errorf("file %q: %w", name, err)
		}
		if err := files.RegisterFile(f); err != nil {
			return fmt.Errorf("file %q: %w", name, err)
		}
		return nil
	}
	for _, fd := range fds {
		if err := add(fd.GetName()); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// chainResolver finds descriptors in the loaded files, then in the gateway's own.
type chainResolver struct{ files *protoregistry.Files }

func (c chainResolver) FindFileByPath(p string) (protoreflect.FileDescriptor, error) {
	if f, err := c.files.FindFileByPath(p); err == nil {
		return f, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(p)
}

func (c chainResolver) FindDescriptorByName(n protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := c.files.FindDescriptorByName(n); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(n)
}

// Reflect loads the files defining the given fully qualified symbols (services) from the
// service's gRPC server reflection (grpc.reflection.v1). The requests go as one stream through
// us.Do, so the service's balancer, breaker and retries apply.
func Reflect(ctx context.Context, us *upstream.Service, symbols []string) (*protoregistry.Files, error) {
	var body []byte
	for _, s := range symbols {
		msg, err := proto.Marshal(&reflectpb.ServerReflectionRequest{
			MessageRequest: &reflectpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: s},
		})
		if err != nil {
			return nil, fmt.Errorf("reflection: %w", err)
		}
		body = wire.AppendFrame(body, msg)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("reflection: %w", err)
	}
	req.URL = &url.URL{Path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"}
	req.Header = http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}}
	resp, err := us.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("reflection: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reflection: HTTP status %d", resp.StatusCode)
	}
	var fds []*descriptorpb.FileDescriptorProto
	seen := map[string]bool{}
	for {
		frame, err := wire.ReadFrame(resp.Body, maxSchemaBytes, resp.Header.Get("Grpc-Encoding"))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reflection: %w", err)
		}
		var out reflectpb.ServerReflectionResponse
		if err := proto.Unmarshal(frame, &out); err != nil {
			return nil, fmt.Errorf("reflection: %w", err)
		}
		if e := out.GetErrorResponse(); e != nil {
			return nil, fmt.Errorf("reflection: %s: %s", wire.Code(e.GetErrorCode()), e.GetErrorMessage())
		}
		for _, raw := range out.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(raw, fd); err != nil {
				return nil, fmt.Errorf("reflection: %w", err)
			}
			if !seen[fd.GetName()] {
				seen[fd.GetName()] = true
				fds = append(fds, fd)
			}
		}
	}
	if st := statusOf(resp); st.Code != wire.OK {
		return nil, fmt.Errorf("reflection: %s: %s", st.Code, st.Message)
	}
	files, err := buildFiles(fds)
	if err != nil {
		return nil, fmt.Errorf("reflection: %w", err)
	}
	return files, nil
}

// Status is a gRPC call's outcome.
type Status struct {
	Code    wire.Code
	Message string
}

// statusOf reads the call status from the trailers, or from the headers of a Trailers-Only
// response. It must be called after the body was read to EOF. A response that is not gRPC at
// all gets a code derived from its HTTP status.
func statusOf(resp *http.Response) Status {
	if resp.StatusCode != http.StatusOK {
		return Status{Code: wire.CodeFromHTTP(resp.StatusCode), Message: fmt.Sprintf("upstream answered HTTP %d", resp.StatusCode)}
	}
	src := resp.Trailer
	if src.Get("Grpc-Status") == "" {
		src = resp.Header
	}
	v := src.Get("Grpc-Status")
	if v == "" {
		return Status{Code: wire.Internal, Message: "the upstream response carries no grpc-status"}
	}
	var n uint32
	if _, err := fmt.Sscan(v, &n); err != nil {
		return Status{Code: wire.Unknown, Message: "malformed grpc-status"}
	}
	return Status{Code: wire.Code(n), Message: wire.DecodeMessage(src.Get("Grpc-Message"))}
}
