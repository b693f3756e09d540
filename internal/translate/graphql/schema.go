package graphql

import (
	"fmt"
	"strconv"

	gql "github.com/graphql-go/graphql"
	gqlast "github.com/graphql-go/graphql/language/ast"
	"github.com/vektah/gqlparser/v2/ast"
)

// builder turns a schema parsed by gqlparser (SDL) into an executable graphql-go schema, with
// the REST resolvers attached. graphql-go builds schemas from Go values only, so each SDL type
// becomes its graphql-go counterpart; fields are thunks so types may refer to each other.
type builder struct {
	src     *ast.Schema
	types   map[string]gql.Type
	resolve func(typeName string, f *ast.FieldDefinition) gql.FieldResolveFn
	err     error
}

func buildSchema(src *ast.Schema, resolve func(string, *ast.FieldDefinition) gql.FieldResolveFn) (gql.Schema, error) {
	b := &builder{src: src, resolve: resolve, types: map[string]gql.Type{
		"Int": gql.Int, "Float": gql.Float, "String": gql.String, "Boolean": gql.Boolean, "ID": gql.ID,
	}}
	cfg := gql.SchemaConfig{}
	if src.Query != nil {
		cfg.Query, _ = b.named(src.Query.Name).(*gql.Object)
	}
	if src.Mutation != nil {
		cfg.Mutation, _ = b.named(src.Mutation.Name).(*gql.Object)
	}
	// Types reachable only through interfaces or unions must be listed to be known.
	for name, def := range src.Types {
		if def.BuiltIn || def.Kind != ast.Object {
			continue
		}
		if t, ok := b.named(name).(*gql.Object); ok && t != cfg.Query && t != cfg.Mutation {
			cfg.Types = append(cfg.Types, t)
		}
	}
	if b.err != nil {
		return gql.Schema{}, b.err
	}
	s, err := gql.NewSchema(cfg)
	if err != nil {
		return gql.Schema{}, err
	}
	if b.err != nil {
		return gql.Schema{}, b.err
	}
	return s, nil
}

func (b *builder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf(format, args...)
	}
}

// named returns (building on first use) the graphql-go type of an SDL type name.
func (b *builder) named(name string) gql.Type {
	if t, ok := b.types[name]; ok {
		return t
	}
	def := b.src.Types[name]
	if def == nil {
		b.fail("unknown type %q", name)
		return gql.String
	}
	var t gql.Type
	switch def.Kind {
	case ast.Scalar:
		t = gql.NewScalar(gql.ScalarConfig{
			Name: def.Name, Description: def.Description,
			Serialize:    func(v any) any { return v },
			ParseValue:   func(v any) any { return v },
			ParseLiteral: literalValue,
		})
	case ast.Enum:
		values := gql.EnumValueConfigMap{}
		for _, v := range def.EnumValues {
			values[v.Name] = &gql.EnumValueConfig{Value: v.Name, Description: v.Description}
		}
		t = gql.NewEnum(gql.EnumConfig{Name: def.Name, Description: def.Description, Values: values})
	case ast.InputObject:
		fields := def.Fields
		t = gql.NewInputObject(gql.InputObjectConfig{Name: def.Name, Description: def.Description,
			Fields: gql.InputObjectConfigFieldMapThunk(func() gql.InputObjectConfigFieldMap {
				out := gql.InputObjectConfigFieldMap{}
				for _, f := range fields {
					in, _ := b.typeOf(f.Type).(gql.Input)
					field := &gql.InputObjectFieldConfig{Type: in, Description: f.Description}
					if f.DefaultValue != nil {
						field.DefaultValue, _ = f.DefaultValue.Value(nil)
					}
					out[f.Name] = field
				}
				return out
			})})
	case ast.Interface:
		t = gql.NewInterface(gql.InterfaceConfig{Name: def.Name, Description: def.Description,
			Fields: b.fieldsThunk(def), ResolveType: b.resolveType})
	case ast.Union:
		var members []*gql.Object
		b.types[name] = nil // break cycles while members are built
		for _, m := range def.Types {
			if o, ok := b.named(m).(*gql.Object); ok {
				members = append(members, o)
			}
		}
		t = gql.NewUnion(gql.UnionConfig{Name: def.Name, Description: def.Description, Types: members, ResolveType: b.resolveType})
	case ast.Object:
		ifaces := def.Interfaces
		t = gql.NewObject(gql.ObjectConfig{Name: def.Name, Description: def.Description, Fields: b.fieldsThunk(def),
			Interfaces: gql.InterfacesThunk(func() []*gql.Interface {
				var out []*gql.Interface
				for _, n := range ifaces {
					if i, ok := b.named(n).(*gql.Interface); ok {
						out = append(out, i)
					}
				}
				return out
			})})
	default:
		b.fail("type %q: unsupported kind %s", name, def.Kind)
		t = gql.String
	}
	b.types[name] = t
	return t
}

// resolveType picks the concrete object type of an interface or union value from its
// "__typename" field.
func (b *builder) resolveType(p gql.ResolveTypeParams) *gql.Object {
	m, ok := p.Value.(map[string]any)
	if !ok {
		return nil
	}
	name, _ := m["__typename"].(string)
	def := b.src.Types[name]
	if def == nil || def.Kind != ast.Object {
		return nil
	}
	o, _ := b.types[name].(*gql.Object)
	return o
}

func (b *builder) fieldsThunk(def *ast.Definition) gql.FieldsThunk {
	return func() gql.Fields {
		fields := gql.Fields{}
		for _, f := range def.Fields {
			if len(f.Name) > 1 && f.Name[:2] == "__" {
				continue
			}
			out, _ := b.typeOf(f.Type).(gql.Output)
			field := &gql.Field{Name: f.Name, Type: out, Description: f.Description, Resolve: b.resolve(def.Name, f)}
			if dep := f.Directives.ForName("deprecated"); dep != nil {
				field.DeprecationReason = "No longer supported"
				if a := dep.Arguments.ForName("reason"); a != nil && a.Value != nil {
					field.DeprecationReason = a.Value.Raw
				}
			}
			if len(f.Arguments) > 0 {
				field.Args = gql.FieldConfigArgument{}
				for _, a := range f.Arguments {
					in, _ := b.typeOf(a.Type).(gql.Input)
					arg := &gql.ArgumentConfig{Type: in, Description: a.Description}
					if a.DefaultValue != nil {
						arg.DefaultValue, _ = a.DefaultValue.Value(nil)
					}
					field.Args[a.Name] = arg
				}
			}
			fields[f.Name] = field
		}
		return fields
	}
}

// typeOf converts an SDL type reference (with list and non-null wrappers).
func (b *builder) typeOf(t *ast.Type) gql.Type {
	var inner gql.Type
	if t.Elem != nil {
		inner = gql.NewList(b.typeOf(t.Elem))
	} else {
		inner = b.named(t.NamedType)
	}
	if t.NonNull {
		return gql.NewNonNull(inner)
	}
	return inner
}

// literalValue converts a literal in a query to a Go value for custom scalars.
func literalValue(v gqlast.Value) any {
	switch v := v.(type) {
	case *gqlast.StringValue:
		return v.Value
	case *gqlast.IntValue:
		if n, err := strconv.ParseInt(v.Value, 10, 64); err == nil {
			return n
		}
		return v.Value
	case *gqlast.FloatValue:
		if f, err := strconv.ParseFloat(v.Value, 64); err == nil {
			return f
		}
		return v.Value
	case *gqlast.BooleanValue:
		return v.Value
	case *gqlast.EnumValue:
		return v.Value
	case *gqlast.ListValue:
		out := make([]any, len(v.Values))
		for i, e := range v.Values {
			out[i] = literalValue(e)
		}
		return out
	case *gqlast.ObjectValue:
		out := map[string]any{}
		for _, f := range v.Fields {
			out[f.Name.Value] = literalValue(f.Value)
		}
		return out
	}
	return nil
}
