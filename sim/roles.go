package main

// Roles with privileges taken away: "operator-Global.SetCustomField" (or several,
// "operator-Global.SetCustomField,Authorization.ModifyPermissions") is the operator role
// without them, so a test can show what the remediator does when a site's role lacks one
// privilege (vCenter lets an administrator build any role from single privileges).

import (
	"fmt"
	"strings"
)

// derivedRole registers ROLE-PRIV[,PRIV...] in roles; false when name is not of that form.
func derivedRole(name string) (bool, error) {
	base, minus, ok := strings.Cut(name, "-")
	if !ok || base == roleReadOnly || base == "read" {
		return false, nil
	}
	set, known := roles[base]
	if !known || set == nil {
		return false, fmt.Errorf("role %q: only operator privileges can be taken away", name)
	}
	out := make(map[string]bool, len(set))
	for p := range set {
		out[p] = true
	}
	for _, p := range strings.Split(minus, ",") {
		if !out[p] {
			return false, fmt.Errorf("role %q: %s is not a privilege of %s", name, p, base)
		}
		delete(out, p)
	}
	roles[name] = out
	return true, nil
}
