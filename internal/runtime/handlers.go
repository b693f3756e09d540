package runtime

import (
	"context"
	"errors"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/aggregate"
	"github.com/gatehouse/gatehouse/internal/config"
	gqltr "github.com/gatehouse/gatehouse/internal/translate/graphql"
	grpctr "github.com/gatehouse/gatehouse/internal/translate/grpc"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Route handlers other than the proxy. Each lives in its own package; these constructors adapt
// them to the runtime.

var errNotImplemented = errors.New("not implemented yet")

// aggregateHandler builds a route that fans out to several services and merges the results.
func (rt *Runtime) aggregateHandler(rc *config.Route, deps Deps) (http.Handler, string, error) {
	h, err := aggregate.New(rt.Config, rc, aggregate.Deps{
		Upstream: func(name string) aggregate.Doer {
			if us := rt.Upstream(name); us != nil {
				return observedService{us: us, rm: deps.Metrics.Route(rc.Name, name)}
			}
			return nil // a typed nil *upstream.Service would not compare equal to nil
		},
		Logger: deps.Logger,
	})
	if err != nil {
		return nil, "", err
	}
	return h, h.Summary(), nil
}

// graphqlHandler builds a GraphQL endpoint resolved by REST calls to services.
func (rt *Runtime) graphqlHandler(rc *config.Route, deps Deps) (http.Handler, string, error) {
	g := rc.GraphQL
	sdl := g.Schema
	if g.SchemaFile != "" {
		data, err := os.ReadFile(g.SchemaFile)
		if err != nil {
			return nil, "", fmt.Errorf("graphql: %w", err)
		}
		sdl = string(data)
	}
	opts := gqltr.Options{
		Route: rc.Name, Schema: sdl, Upstream: rt.Upstream, Resolvers: map[string]gqltr.Resolver{},
		MaxDepth: g.MaxDepth, MaxComplexity: g.MaxComplexity, MaxAliases: g.MaxAliases, MaxBatchSize: g.MaxBatchSize,
		MaxCalls: g.MaxCalls, Introspection: g.Introspection, RequestTimeout: rc.Timeouts.Request.Duration, Logger: rt.logger,
	}
	for k, r := range g.Resolvers {
		opts.Resolvers[k] = gqltr.Resolver{Service: r.Service, Method: r.Method, Path: r.Path, Query: r.Query, Body: r.Body, Result: r.Result}
	}
	if pq := g.PersistedQueries; pq != nil {
		opts.Persisted, opts.PersistedOnly = pq.Queries, pq.Only
	}
	opts.ForwardHeaders = rt.callHeaders(rc, g.ForwardHeaders)
	h, err := gqltr.New(opts)
	if err != nil {
		return nil, "", err
	}
	return h, h.Summary(), nil
}

// grpcHandler builds a REST/JSON to gRPC transcoding route.
func (rt *Runtime) grpcHandler(rc *config.Route, svc *config.Service, deps Deps) (http.Handler, string, error) {
	g := rc.GRPC
	us := rt.Upstream(svc.Name)
	if us == nil {
		return nil, "", fmt.Errorf("grpc: unknown service %q", svc.Name)
	}
	opts := grpctr.Options{
		Route: rc.Name, Upstream: us, Service: g.Service, Method: g.Method, ResponseBody: g.ResponseBody,
		UseProtoNames: g.FieldNames == "proto", EmitUnpopulated: g.EmitUnpopulated,
		RequestTimeout: config.EffectiveTimeouts(svc.Timeouts, rc.Timeouts).Request.Duration,
		LoadTimeout:    g.ReflectionTimeout.Duration, Logger: rt.logger,
	}
	if g.Body != nil {
		opts.Body = *g.Body
	}
	opts.ForwardHeaders = rt.callHeaders(rc, g.ForwardHeaders)
	if g.Descriptors != "" {
		files, err := grpctr.LoadDescriptorSet(g.Descriptors)
		if err != nil {
			return nil, "", fmt.Errorf("grpc: %w", err)
		}
		opts.Files = files
	} else {
		symbol := g.Service
		if symbol == "" {
			symbol, _, _ = strings.Cut(g.Method, "/")
		}
		opts.Load = func(ctx context.Context) (*protoregistry.Files, error) {
			return grpctr.Reflect(ctx, us, []string{symbol})
		}
	}
	h, loadErr, err := grpctr.New(opts)
	if err != nil {
		return nil, "", fmt.Errorf("grpc: %w", err)
	}
	if loadErr != nil {
		// An unreachable server must not block a start or a reload: the schema is fetched
		// again on the next requests, which get 503 meanwhile.
		rt.logger.Warn("grpc schema not loaded; retrying on requests", "route", rc.Name, "service", svc.Name, "error", loadErr.Error())
	}
	return h, h.Summary(), nil
}

// callHeaders are the request headers a GraphQL or gRPC route sends on: its forward_headers and,
// as the proxy and aggregation routes do, the identity headers the auth middleware set (only the
// gateway's values can be there: config.RouteIdentityHeaders).
func (rt *Runtime) callHeaders(rc *config.Route, forward []string) []string {
	out := rt.Config.RouteIdentityHeaders(rc)
	for _, h := range config.CanonicalHeaders(forward) {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// observedService is a service an aggregate route calls, with each attempt recorded as the
// proxy records its own: a client span and the upstream attempt metrics, under the route and
// the called service.
type observedService struct {
	us *upstream.Service
	rm *telemetry.RouteMetrics
}

func (o observedService) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	return o.us.DoObserved(ctx, req, func(r *http.Request, target string) func(int, error) {
		return telemetry.CallAttempt(ctx, o.rm, r.Header, target)
	})
}
