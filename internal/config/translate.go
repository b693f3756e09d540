package config

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// Service protocols accepted in services[].protocol.
var serviceProtocols = []string{"http1", "h2c", "h2"}

// GRPCRoute answers REST/JSON requests by calling a gRPC method of the route's service (REST to
// gRPC transcoding). The service must speak HTTP/2 (protocol: h2c or h2). Its schema comes from
// a descriptor set file or from the server's reflection service; request messages are built at
// run time, so adding a service needs no generated code. Path parameters of the route's match
// path, query parameters and the JSON body are bound into the request message; the answer is
// the response message as JSON (server-streaming methods: one JSON object per line), and a gRPC
// error becomes the matching HTTP status with a JSON error body. Plain gRPC clients need no
// grpc block: a route matching /package.Service/** proxies them to an h2c or h2 service as is.
type GRPCRoute struct {
	// Descriptors is a FileDescriptorSet file holding the service's schema, made with
	// `protoc --include_imports -o users.pb users.proto` (or `buf build -o`). Either descriptors
	// or reflection is required.
	Descriptors string `yaml:"descriptors"`
	// Reflection loads the schema from the service's gRPC server reflection (v1) each time the
	// config is compiled (start and every reload). If no target answers then, the schema is
	// fetched again on the next request (at most every 5s) and requests fail with 503 meanwhile.
	// Default: false.
	Reflection bool `yaml:"reflection"`
	// ReflectionTimeout bounds loading the schema through reflection. Default: 5s.
	ReflectionTimeout Duration `yaml:"reflection_timeout"`
	// Service is a fully qualified gRPC service name ("users.v1.UserService"): requests are
	// mapped to its methods by their google.api.http annotations (method and path template; the
	// annotation's body and response_body apply). Give service or method, not both.
	Service string `yaml:"service"`
	// Method is the one gRPC method this route calls, "users.v1.UserService/GetUser": the route's
	// own match (e.g. POST /v1/users/{id}) decides which requests reach it. Path parameters fill
	// the request fields of the same name ("{user.id}" a nested field), query parameters too
	// (repeated fields accept repeated parameters), and the JSON body is decoded per body.
	Method string `yaml:"method"`
	// Body says where the JSON request body goes with method: "*" (the whole request message;
	// query parameters are then ignored), the name of one request field, or "" (no body is
	// read). Query parameters fill the rest. Default: "*".
	Body *string `yaml:"body"`
	// ResponseBody answers with one field of the response message instead of the whole message
	// (with method). Default: the whole message.
	ResponseBody string `yaml:"response_body"`
	// FieldNames chooses the JSON field names of responses: "json" (lowerCamelCase, as protojson)
	// or "proto" (the names in the .proto file, usually snake_case). Requests accept both.
	// Default: json.
	FieldNames string `yaml:"field_names"`
	// EmitUnpopulated writes fields that hold their zero value (0, "", false, empty lists)
	// instead of leaving them out. Default: false.
	EmitUnpopulated bool `yaml:"emit_unpopulated"`
	// ForwardHeaders are request headers sent to the gRPC server as metadata (e.g. Authorization,
	// or the identity headers auth sets). X-Request-ID and the W3C trace context always go.
	// Default: none.
	ForwardHeaders []string `yaml:"forward_headers"`
}

// GraphQLRoute is a GraphQL endpoint (GraphQL over HTTP: GET and POST, JSON or
// application/graphql-response+json) whose schema is written in the config and whose fields are
// resolved by REST calls to services. Sibling fields resolve in parallel, identical calls within
// one request are made once, and a failing field is null with an entry in errors while the rest
// of the data is returned. Route plugins (auth, rate limits, cache) apply as on any route.
type GraphQLRoute struct {
	// Schema is the GraphQL schema in SDL, e.g. "type Query { user(id: ID!): User }". Either
	// schema or schema_file is required. Object, input, enum, interface and union types and
	// custom scalars (passed through as JSON) are supported; interfaces and unions take the
	// concrete type from the "__typename" field of the REST answer.
	Schema string `yaml:"schema"`
	// SchemaFile reads the SDL from this file instead.
	SchemaFile string `yaml:"schema_file"`
	// Resolvers map "Type.field" to the REST call that resolves it, e.g. "Query.user" or
	// "User.orders". Every field of Query and Mutation needs one; other fields without one are
	// read from their parent's JSON object by name.
	Resolvers map[string]GraphQLResolver `yaml:"resolvers"`
	// MaxDepth caps how deeply a query may nest fields (fragments included). Default: 10.
	MaxDepth int `yaml:"max_depth"`
	// MaxComplexity caps how many fields a query selects in all (each field counts 1, fragments
	// counted where spread). Default: 500.
	MaxComplexity int `yaml:"max_complexity"`
	// MaxAliases caps how many aliased fields a query may hold (aliases multiply work). Default: 30.
	MaxAliases int `yaml:"max_aliases"`
	// MaxBatchSize caps how many operations one POST may carry as a JSON array (batching); 0
	// refuses batches. Default: 0.
	MaxBatchSize int `yaml:"max_batch_size"`
	// MaxCalls caps the REST calls one request may make (after de-duplication); fields beyond it
	// fail with an error. Default: 100.
	MaxCalls int `yaml:"max_calls"`
	// Introspection allows __schema and __type queries. Default: false.
	Introspection bool `yaml:"introspection"`
	// PersistedQueries registers known query documents, which clients may then send by their
	// SHA-256 hash alone (extensions.persistedQuery.sha256Hash), and optionally allows only them.
	PersistedQueries *PersistedQueries `yaml:"persisted_queries"`
	// ForwardHeaders are client request headers copied to every REST call (e.g. Authorization,
	// or the identity headers auth sets). X-Request-ID and the W3C trace context always go.
	// Default: none.
	ForwardHeaders []string `yaml:"forward_headers"`
}

// PersistedQueries is a GraphQL route's list of known query documents.
type PersistedQueries struct {
	// Queries are the known query documents; each is addressed by the hex SHA-256 of its text.
	Queries []string `yaml:"queries"`
	// Only refuses every query that is not in queries (an allow-list), whether sent in full or
	// by hash. Default: false.
	Only bool `yaml:"only"`
}

// GraphQLResolver is the REST call that resolves one GraphQL field. Templates take values in
// braces: "{args.id}" an argument of the field, "{parent.id}" a field of the parent object's
// JSON (with dots for nested fields). Values are URL-escaped; a query parameter whose template
// yields nothing is left out.
type GraphQLResolver struct {
	// Service is the name of the service called. Required.
	Service string `yaml:"service"`
	// Method is the HTTP method. Default: GET.
	Method string `yaml:"method"`
	// Path is the request path template, e.g. "/users/{args.id}". Values are percent-escaped,
	// and a value that is empty, "." or ".." or holds "/" or "\\" fails the field. Required.
	Path string `yaml:"path"`
	// Query maps query parameter names to templates, e.g. {userId: "{parent.id}"}.
	Query map[string]string `yaml:"query"`
	// Body sends a JSON body: "args" (all arguments as an object), "args.<name>" (one argument)
	// or "parent" / "parent.<field>" (the parent object or one of its fields). Default: no body.
	Body string `yaml:"body"`
	// Result picks the field's value out of the JSON answer by a dotted path, e.g. "data.items".
	// Default: the whole answer. A 404 answer resolves to null; any other non-2xx answer is an
	// error on the field.
	Result string `yaml:"result"`
}

func (c *Config) defaultTranslate() {
	for i := range c.Services {
		if c.Services[i].Protocol == "" {
			c.Services[i].Protocol = "http1"
		}
	}
	for i := range c.Routes {
		if g := c.Routes[i].GRPC; g != nil {
			defDur(&g.ReflectionTimeout, 5*time.Second)
			if g.Body == nil && g.Method != "" {
				star := "*"
				g.Body = &star
			}
			if g.FieldNames == "" {
				g.FieldNames = "json"
			}
		}
		if q := c.Routes[i].GraphQL; q != nil {
			if q.MaxDepth == 0 {
				q.MaxDepth = 10
			}
			if q.MaxComplexity == 0 {
				q.MaxComplexity = 500
			}
			if q.MaxAliases == 0 {
				q.MaxAliases = 30
			}
			if q.MaxCalls == 0 {
				q.MaxCalls = 100
			}
			for k, r := range q.Resolvers {
				if r.Method == "" {
					r.Method = "GET"
				}
				r.Method = strings.ToUpper(r.Method)
				q.Resolvers[k] = r
			}
		}
	}
}

var (
	grpcNameRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)
	grpcMethodRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+/[A-Za-z_][A-Za-z0-9_]*$`)
	fieldPathRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	templateRe   = regexp.MustCompile(`\{([^{}]*)\}`)
)

func (s *Source) validateTranslate(add func(path, format string, args ...any)) {
	c := s.Config
	svcs := map[string]*Service{}
	for i := range c.Services {
		svc := &c.Services[i]
		svcs[svc.Name] = svc
		p := fmt.Sprintf("services[%d]", i)
		if !contains(serviceProtocols, svc.Protocol) {
			add(p+".protocol", "unknown protocol %q (want one of %s)", svc.Protocol, strings.Join(serviceProtocols, ", "))
			continue
		}
		for j, t := range svc.Targets {
			switch {
			case svc.Protocol == "h2c" && strings.HasPrefix(t.URL, "https:"):
				add(fmt.Sprintf("%s.targets[%d].url", p, j), "protocol h2c is cleartext HTTP/2: use an http:// target (or protocol: h2)")
			case svc.Protocol == "h2" && strings.HasPrefix(t.URL, "http:"):
				add(fmt.Sprintf("%s.targets[%d].url", p, j), "protocol h2 is HTTP/2 over TLS: use an https:// target (or protocol: h2c)")
			}
		}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		if r.GRPC != nil {
			s.validateGRPCRoute(add, p, r, svcs)
		}
		if r.GraphQL != nil {
			s.validateGraphQLRoute(add, p+".graphql", r.GraphQL, svcs)
		}
	}
}

func (s *Source) validateGRPCRoute(add func(path, format string, args ...any), p string, r *Route, svcs map[string]*Service) {
	g := r.GRPC
	gp := p + ".grpc"
	if r.Aggregate != nil || r.GraphQL != nil {
		add(gp, "cannot be combined with aggregate or graphql")
		return
	}
	if svc, ok := svcs[r.Service]; ok && svc.Protocol != "h2c" && svc.Protocol != "h2" {
		add(gp, "service %q must speak HTTP/2 to call gRPC: set its protocol to h2c or h2", r.Service)
	}
	switch {
	case g.Descriptors == "" && !g.Reflection:
		add(gp, "needs descriptors (a descriptor set file) or reflection: true")
	case g.Descriptors != "" && g.Reflection:
		add(gp+".reflection", "cannot be combined with descriptors")
	}
	if g.ReflectionTimeout.Duration <= 0 {
		add(gp+".reflection_timeout", "must be greater than 0")
	}
	switch {
	case g.Service == "" && g.Method == "":
		add(gp, "needs service (mapped by google.api.http annotations) or method")
	case g.Service != "" && g.Method != "":
		add(gp+".method", "cannot be combined with service")
	case g.Service != "" && !grpcNameRe.MatchString(g.Service):
		add(gp+".service", "%q is not a fully qualified gRPC service name (e.g. users.v1.UserService)", g.Service)
	case g.Method != "" && !grpcMethodRe.MatchString(g.Method):
		add(gp+".method", "%q is not a gRPC method (package.Service/Method)", g.Method)
	}
	if g.Service != "" {
		if g.Body != nil {
			add(gp+".body", "is taken from the google.api.http annotations with service (set it only with method)")
		}
		if g.ResponseBody != "" {
			add(gp+".response_body", "is taken from the google.api.http annotations with service (set it only with method)")
		}
	}
	if g.Body != nil && *g.Body != "" && *g.Body != "*" && !fieldPathRe.MatchString(*g.Body) {
		add(gp+".body", "%q must be \"*\", a request field name or \"\"", *g.Body)
	}
	if g.ResponseBody != "" && !fieldPathRe.MatchString(g.ResponseBody) {
		add(gp+".response_body", "%q is not a field name", g.ResponseBody)
	}
	if g.FieldNames != "json" && g.FieldNames != "proto" {
		add(gp+".field_names", "unknown naming %q (want json or proto)", g.FieldNames)
	}
	for j, h := range g.ForwardHeaders {
		checkHeaderName(add, fmt.Sprintf("%s.forward_headers[%d]", gp, j), h)
	}
	if r.StripPrefix != "" || r.Rewrite != "" {
		add(gp, "strip_prefix and rewrite do not apply to a transcoded route (the gRPC method decides the path)")
	}
}

func (s *Source) validateGraphQLRoute(add func(path, format string, args ...any), p string, q *GraphQLRoute, svcs map[string]*Service) {
	sdl := q.Schema
	switch {
	case q.Schema == "" && q.SchemaFile == "":
		add(p, "needs schema (SDL) or schema_file")
		return
	case q.Schema != "" && q.SchemaFile != "":
		add(p+".schema_file", "cannot be combined with schema")
		return
	case q.SchemaFile != "":
		data, err := os.ReadFile(q.SchemaFile)
		if err != nil {
			add(p+".schema_file", "cannot read %q: %v", q.SchemaFile, unwrapPathError(err))
			return
		}
		sdl = string(data)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max_depth", q.MaxDepth}, {"max_complexity", q.MaxComplexity}, {"max_aliases", q.MaxAliases}, {"max_calls", q.MaxCalls}} {
		if f.v < 1 {
			add(p+"."+f.name, "must be at least 1")
		}
	}
	if q.MaxBatchSize < 0 {
		add(p+".max_batch_size", "must not be negative")
	}
	for j, h := range q.ForwardHeaders {
		checkHeaderName(add, fmt.Sprintf("%s.forward_headers[%d]", p, j), h)
	}
	if pq := q.PersistedQueries; pq != nil {
		if pq.Only && len(pq.Queries) == 0 {
			add(p+".persisted_queries.queries", "is empty, so only: true would refuse every query")
		}
		for j, doc := range pq.Queries {
			if _, err := parser.ParseQuery(&ast.Source{Input: doc}); err != nil {
				add(fmt.Sprintf("%s.persisted_queries.queries[%d]", p, j), "is not a GraphQL document: %v", err)
			}
		}
	}

	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema", Input: sdl})
	if gerr != nil {
		add(p+schemaField(q), "invalid GraphQL schema: %s", gerr.Error())
		return
	}
	if schema.Subscription != nil {
		add(p+schemaField(q), "subscriptions are not supported")
	}
	keys := make([]string, 0, len(q.Resolvers))
	for k := range q.Resolvers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		res := q.Resolvers[k]
		rp := p + ".resolvers." + k
		typeName, fieldName, ok := strings.Cut(k, ".")
		def := schema.Types[typeName]
		if !ok || def == nil || def.Kind != ast.Object || def.Fields.ForName(fieldName) == nil || strings.HasPrefix(fieldName, "__") {
			add(rp, "%q is not a field of an object type of the schema (want Type.field)", k)
			continue
		}
		field := def.Fields.ForName(fieldName)
		if res.Service == "" {
			add(rp+".service", "is required")
		} else if _, ok := svcs[res.Service]; !ok {
			add(rp+".service", "unknown service %q", res.Service)
		}
		if !validToken(res.Method) {
			add(rp+".method", "%q is not a valid HTTP method", res.Method)
		}
		if !strings.HasPrefix(res.Path, "/") {
			add(rp+".path", "is required and must start with /")
		}
		checkTemplate := func(fp, tmpl string) {
			for _, m := range templateRe.FindAllStringSubmatch(tmpl, -1) {
				if msg := checkGraphQLRef(m[1], field, false); msg != "" {
					add(fp, "%s", msg)
				}
			}
			if strings.Count(tmpl, "{") != strings.Count(tmpl, "}") {
				add(fp, "unbalanced braces in %q", tmpl)
			}
		}
		checkTemplate(rp+".path", res.Path)
		for name, tmpl := range res.Query {
			if name == "" {
				add(rp+".query", "a parameter name is empty")
			}
			checkTemplate(rp+".query."+name, tmpl)
		}
		if res.Body != "" {
			if msg := checkGraphQLRef(res.Body, field, true); msg != "" {
				add(rp+".body", "%s", msg)
			}
		}
		if res.Result != "" && !fieldPathRe.MatchString(res.Result) {
			add(rp+".result", "%q is not a dotted path such as data.items", res.Result)
		}
	}
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation} {
		if root == nil {
			continue
		}
		for _, f := range root.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if _, ok := q.Resolvers[root.Name+"."+f.Name]; !ok {
				add(p+".resolvers", "%s.%s has no resolver (every root field needs one)", root.Name, f.Name)
			}
		}
	}
}

// checkGraphQLRef checks one "{...}" reference of a resolver template.
func checkGraphQLRef(ref string, field *ast.FieldDefinition, body bool) string {
	if body && (ref == "args" || ref == "parent") {
		return ""
	}
	scope, rest, _ := strings.Cut(ref, ".")
	switch scope {
	case "args":
		name, _, _ := strings.Cut(rest, ".")
		if field.Arguments.ForName(name) == nil {
			return fmt.Sprintf("{%s}: %q is not an argument of field %s", ref, name, field.Name)
		}
	case "parent":
		if !fieldPathRe.MatchString(rest) {
			return fmt.Sprintf("{%s}: want parent.<field>", ref)
		}
	default:
		if body {
			return fmt.Sprintf("%q must be args, args.<name>, parent or parent.<field>", ref)
		}
		return fmt.Sprintf("{%s} must start with args. or parent.", ref)
	}
	return ""
}

func schemaField(q *GraphQLRoute) string {
	if q.SchemaFile != "" {
		return ".schema_file"
	}
	return ".schema"
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
