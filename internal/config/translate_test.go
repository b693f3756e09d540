package config

import (
	"strings"
	"testing"
	"time"
)

const translateBase = `version: 1
listeners: [{ name: public, address: ":8080" }]
services:
  - { name: rest, targets: [{ url: "http://10.0.0.1:80" }] }
  - { name: g, protocol: h2c, targets: [{ url: "http://10.0.0.2:9000" }] }
routes:
`

func TestTranslateDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load("gw.yaml", []byte(translateBase+`  - { name: a, match: { path: /a }, service: g, grpc: { reflection: true, method: p.S/M } }
  - { name: b, match: { path: /b/** }, service: g, grpc: { descriptors: x.pb, service: p.S } }
  - name: q
    match: { path: /graphql }
    graphql:
      schema: "type Query { u(id: ID!): String }"
      resolvers: { Query.u: { service: rest, method: post, path: "/u/{args.id}" } }
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Services[0].Protocol != "http1" || cfg.Services[1].Protocol != "h2c" {
		t.Errorf("protocols = %q, %q", cfg.Services[0].Protocol, cfg.Services[1].Protocol)
	}
	a := cfg.Routes[0].GRPC
	if a.ReflectionTimeout.Duration != 5*time.Second || a.Body == nil || *a.Body != "*" || a.FieldNames != "json" || a.EmitUnpopulated {
		t.Errorf("grpc defaults with method: %+v", a)
	}
	if b := cfg.Routes[1].GRPC; b.Body != nil {
		t.Errorf("grpc with service got a body default: %q", *b.Body)
	}
	q := cfg.Routes[2].GraphQL
	if q.MaxDepth != 10 || q.MaxComplexity != 500 || q.MaxAliases != 30 || q.MaxBatchSize != 0 || q.MaxCalls != 100 || q.Introspection {
		t.Errorf("graphql defaults: %+v", q)
	}
	if r := q.Resolvers["Query.u"]; r.Method != "POST" {
		t.Errorf("resolver method = %q, want POST", r.Method)
	}
}

func TestTranslateFullConfig(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, "full.yaml", readTestdata(t, "full.yaml"), noEnv)
	var svcProto string
	for _, s := range cfg.Services {
		if s.Name == "users-grpc" {
			svcProto = s.Protocol
		}
	}
	if svcProto != "h2c" {
		t.Errorf("users-grpc protocol = %q", svcProto)
	}
	routes := map[string]*Route{}
	for i := range cfg.Routes {
		routes[cfg.Routes[i].Name] = &cfg.Routes[i]
	}
	g := routes["get-user-grpc"].GRPC
	if !g.Reflection || g.ReflectionTimeout.Duration != 2*time.Second || g.Method != "users.v1.UserService/GetUser" || *g.Body != "user" || g.ResponseBody != "display_name" {
		t.Errorf("get-user-grpc: %+v", g)
	}
	if r := routes["users-rest-to-grpc"].GRPC; r.Descriptors != "protos/users.pb" || r.Service != "users.v1.UserService" || r.FieldNames != "proto" || !r.EmitUnpopulated || r.ForwardHeaders[0] != "Authorization" {
		t.Errorf("users-rest-to-grpc: %+v", r)
	}
	q := routes["graphql"].GraphQL
	if q.MaxDepth != 5 || q.MaxComplexity != 100 || q.MaxAliases != 5 || q.MaxBatchSize != 4 || q.MaxCalls != 20 || !q.Introspection ||
		!q.PersistedQueries.Only || len(q.PersistedQueries.Queries) != 1 || q.ForwardHeaders[0] != "Authorization" {
		t.Errorf("graphql: %+v", q)
	}
	if r := q.Resolvers["Mutation.rename"]; r.Method != "PATCH" || r.Body != "args" || q.Resolvers["Query.user"].Result != "data" || q.Resolvers["User.orders"].Query["userId"] != "{parent.id}" {
		t.Errorf("resolvers: %+v", q.Resolvers)
	}
	if routes["graphql-file"].GraphQL.SchemaFile != "testdata/schema.graphql" {
		t.Error("schema_file not loaded")
	}
}

func TestTranslateValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		extra string // appended to the services or routes
		svc   string
		want  []string
	}{
		{name: "protocol", svc: `  - { name: x, protocol: http3, targets: [{ url: "http://10.0.0.3:80" }] }
  - { name: y, protocol: h2c, targets: [{ url: "https://10.0.0.3:443" }] }
  - { name: z, protocol: h2, targets: [{ url: "http://10.0.0.3:80" }] }`,
			want: []string{`services[2].protocol: unknown protocol "http3"`, "services[3].targets[0].url: protocol h2c is cleartext", "services[4].targets[0].url: protocol h2 is HTTP/2 over TLS"}},
		{name: "grpc needs http2 and a schema", extra: `  - { name: r, match: { path: /r }, service: rest, grpc: { method: p.S/M } }`,
			want: []string{`routes[0].grpc: service "rest" must speak HTTP/2`, "routes[0].grpc: needs descriptors"}},
		{name: "grpc mapping", extra: `  - { name: r, match: { path: /r }, service: g, grpc: { reflection: true, descriptors: a.pb } }
  - { name: s, match: { path: /s }, service: g, grpc: { reflection: true, method: nope, field_names: camel, forward_headers: ["bad header"] } }
  - { name: u, match: { path: /u/** }, service: g, strip_prefix: /u, grpc: { reflection: true, service: p.S, method: p.S/M } }
  - { name: v, match: { path: /v }, service: g, grpc: { reflection: true, service: p.S, body: "*", response_body: x } }`,
			want: []string{"routes[0].grpc.reflection: cannot be combined with descriptors", "routes[0].grpc: needs service",
				`routes[1].grpc.method: "nope" is not a gRPC method`, `routes[1].grpc.field_names: unknown naming "camel"`,
				`routes[1].grpc.forward_headers[0]: "bad header" is not a valid header name`,
				"routes[2].grpc.method: cannot be combined with service", "routes[2].grpc: strip_prefix and rewrite do not apply",
				"routes[3].grpc.body: is taken from the google.api.http annotations", "routes[3].grpc.response_body: is taken from"}},
		{name: "graphql schema", extra: `  - { name: q, match: { path: /q }, graphql: { schema: "type Query { x: Nope }" } }
  - { name: q2, match: { path: /q2 }, graphql: {} }
  - { name: q3, match: { path: /q3 }, graphql: { schema_file: /nonexistent.graphql } }
  - { name: q4, match: { path: /q4 }, graphql: { schema: "type Query { x: String } type Subscription { y: String }", resolvers: { Query.x: { service: rest, path: /x } } } }`,
			want: []string{"routes[0].graphql.schema: invalid GraphQL schema", "routes[1].graphql: needs schema", `routes[2].graphql.schema_file: cannot read "/nonexistent.graphql"`,
				"routes[3].graphql.schema: subscriptions are not supported"}},
		{name: "graphql resolvers and limits", extra: `  - name: q
    match: { path: /q }
    graphql:
      schema: "type Query { a(id: ID): String b: String c: String } type T { f: String }"
      max_depth: -1
      max_batch_size: -1
      persisted_queries: { only: true, queries: ["{ oops"] }
      resolvers:
        Query.a: { service: nope, method: "G T", path: "x/{args.nope}", query: { p: "{other.x}" }, body: "other", result: "a..b" }
        Query.zz: { service: rest, path: /z }
        T.f: { path: "/f/{parent.id" }`,
			want: []string{"routes[0].graphql.max_depth: must be at least 1", "routes[0].graphql.max_batch_size: must not be negative",
				"routes[0].graphql.persisted_queries.queries[0]: is not a GraphQL document",
				`routes[0].graphql.resolvers.Query.a.service: unknown service "nope"`, `routes[0].graphql.resolvers.Query.a.method: "G T" is not a valid HTTP method`,
				"routes[0].graphql.resolvers.Query.a.path: is required and must start with /", `{args.nope}: "nope" is not an argument of field a`,
				"routes[0].graphql.resolvers.Query.a.query.p: {other.x} must start with args. or parent.",
				`routes[0].graphql.resolvers.Query.a.body: "other" must be args`, `routes[0].graphql.resolvers.Query.a.result: "a..b" is not a dotted path`,
				`routes[0].graphql.resolvers.Query.zz: "Query.zz" is not a field`, "routes[0].graphql.resolvers.T.f.service: is required",
				"routes[0].graphql.resolvers.T.f.path: unbalanced braces", "routes[0].graphql.resolvers: Query.b has no resolver"}},
		{name: "graphql with service", extra: `  - { name: q, match: { path: /q }, service: rest, graphql: { schema: "type Query { x: String }" } }`,
			want: []string{"routes[0].service: cannot be combined with aggregate or graphql"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			yaml := translateBase
			if tt.svc != "" {
				yaml = strings.Replace(yaml, "routes:\n", tt.svc+"\nroutes:\n", 1)
			}
			if tt.extra == "" {
				yaml = strings.Replace(yaml, "routes:\n", "routes:\n  - { name: ok, match: { path: /ok }, service: rest }\n", 1)
			}
			_, err := Load("gw.yaml", []byte(yaml+tt.extra+"\n"), nil)
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors lack %q:\n%v", w, err)
				}
			}
		})
	}
}
