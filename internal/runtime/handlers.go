package runtime

import (
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Route handlers other than the proxy. Each lives in its own package; these constructors adapt
// them to the runtime.

var errNotImplemented = errors.New("not implemented yet")

// aggregateHandler builds a route that fans out to several services and merges the results.
func (rt *Runtime) aggregateHandler(rc *config.Route, deps Deps) (http.Handler, string, error) {
	return nil, "", errNotImplemented
}

// graphqlHandler builds a GraphQL endpoint resolved by REST calls to services.
func (rt *Runtime) graphqlHandler(rc *config.Route, deps Deps) (http.Handler, string, error) {
	return nil, "", errNotImplemented
}

// grpcHandler builds a REST/JSON to gRPC transcoding route.
func (rt *Runtime) grpcHandler(rc *config.Route, svc *config.Service, deps Deps) (http.Handler, string, error) {
	return nil, "", errNotImplemented
}
