// Package grpc transcodes REST/JSON requests to gRPC calls with dynamic messages: the schema
// comes from a descriptor set file or from server reflection, so adding a service needs no
// generated code. Requests map to methods by their google.api.http annotations or by an explicit
// route; responses are protojson (server streams as newline-delimited JSON) and gRPC statuses
// become HTTP statuses per google.rpc.Code.
//
// Calls go through upstream.Service.Do over an HTTP/2 transport (services[].protocol h2c or
// h2), so they get the service's balancer, circuit breaker, health checks and retries like any
// proxied request; the gRPC protocol itself (length-prefixed messages, status in trailers) is
// small enough to speak directly (package wire).
package grpc
