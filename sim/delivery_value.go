package main

// Reading a nested property path ("runtime.connectionState") out of a managed object or a
// changed value, for sim/delivery.go. vcsim's own fieldValue/wrapValue are unexported.

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// objectValue reads path from the managed object ref (under its lock), wrapped for SOAP.
func objectValue(ref types.ManagedObjectReference) func(path string) (interface{}, bool) {
	return func(path string) (interface{}, bool) {
		obj := simulator.Map.Get(ref)
		if obj == nil {
			return nil, false
		}
		var v interface{}
		var ok bool
		simulator.Map.WithLock(obj, func() {
			v, ok = subValue(reflect.ValueOf(embeddedMO(obj)).Elem().Interface(), path)
		})
		return v, ok
	}
}

// unsetParent is subValue's answer for a path below an unset property: the path is not
// unset itself but gone with its parent (sent as op indirectRemove, never encoded).
type unsetParent struct{}

// subValue walks a dotted vSphere property path (XML element names) through v: struct
// fields, embedded structs, pointers and interfaces. An unset pointer on the way gives
// (unsetParent{}, true), an unset leaf (nil, true): the property exists and is unset. The
// result is wrapped as vcsim wraps values (ArrayOfX for slices) so that it encodes with
// its xsi:type.
func subValue(v interface{}, path string) (interface{}, bool) {
	rv := reflect.ValueOf(v)
	for _, seg := range strings.Split(path, ".") {
		for rv.IsValid() && (rv.Kind() == reflect.Ptr || rv.Kind() == reflect.Interface) {
			if rv.IsNil() {
				return unsetParent{}, true
			}
			rv = rv.Elem()
		}
		if !rv.IsValid() || rv.Kind() != reflect.Struct {
			return nil, false
		}
		f, ok := fieldByXMLName(rv, seg)
		if !ok {
			return nil, false
		}
		rv = f
	}
	return wrapped(rv)
}

// fieldByXMLName finds the field whose XML element name is name, also in embedded structs.
func fieldByXMLName(rv reflect.Value, name string) (reflect.Value, bool) {
	t := rv.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			inner := rv.Field(i)
			if inner.Kind() == reflect.Ptr {
				if inner.IsNil() {
					continue
				}
				inner = inner.Elem()
			}
			if inner.Kind() == reflect.Struct {
				if v, ok := fieldByXMLName(inner, name); ok {
					return v, true
				}
			}
			continue
		}
		tag := strings.Split(f.Tag.Get("xml"), ",")[0]
		if tag == "" && f.Name != "" {
			tag = strings.ToLower(f.Name[:1]) + f.Name[1:]
		}
		if tag == name {
			return rv.Field(i), true
		}
	}
	return reflect.Value{}, false
}

var arrayOf = map[reflect.Kind]string{
	reflect.String: "String", reflect.Bool: "Boolean", reflect.Int16: "Short", reflect.Int32: "Int",
	reflect.Int64: "Long", reflect.Int: "Long", reflect.Float32: "Float", reflect.Float64: "Double",
	reflect.Uint8: "Byte",
}

// wrapped returns rv's value as a SOAP AnyType: nil for unset pointers, interfaces and
// empty slices, ArrayOfX{X: slice} for slices, the value itself otherwise.
func wrapped(rv reflect.Value) (interface{}, bool) {
	switch rv.Kind() {
	case reflect.Ptr, reflect.Interface:
		if rv.IsNil() {
			return nil, true
		}
		return wrapped(rv.Elem())
	case reflect.Slice:
		if rv.Len() == 0 {
			return nil, true
		}
		et := rv.Type().Elem()
		name := et.Name()
		if et.PkgPath() == "" {
			name = arrayOf[et.Kind()]
		}
		if et.Kind() == reflect.Interface && strings.HasPrefix(name, "Base") {
			name = strings.TrimPrefix(name, "Base")
		}
		at, ok := types.TypeFunc()("ArrayOf" + name)
		if !ok || at.Kind() != reflect.Struct || at.NumField() != 1 || !rv.Type().AssignableTo(at.Field(0).Type) {
			return rv.Interface(), true
		}
		out := reflect.New(at).Elem()
		out.Field(0).Set(rv)
		return out.Interface(), true
	}
	return rv.Interface(), true
}

// missingPaths are the non-"all" paths the specs ask of an object that a
// RetrievePropertiesEx result left out (vcsim drops unset values there but sends them,
// valueless, in an Enter's changeSet).
func missingPaths(spec types.PropertyFilterSpec, names []string, oc types.ObjectContent) []string {
	have := map[string]bool{}
	for _, p := range oc.PropSet {
		have[p.Name] = true
	}
	for _, m := range oc.MissingSet {
		have[m.Path] = true
	}
	var out []string
	for _, p := range spec.PropSet {
		if !hasType(names, p.Type) || isTrueBool(p.All) {
			continue
		}
		for _, path := range p.PathSet {
			if !have[path] {
				have[path] = true
				out = append(out, path)
			}
		}
	}
	return out
}

var _ mo.Reference = (*deliveryPC)(nil)
