package main

// Accounts and roles: vCenter with more than one user.
//
// vcsim accepts exactly one login (or any login) and lets every session do everything. A
// real vCenter checks, for every call, that the session's user holds the call's privilege
// on the object and answers the SOAP fault NoPermission (object, privilegeId) otherwise.
// The exporter needs only the Read-only role; the remediator needs a few VM and host
// privileges. To test that split, -account adds users with a role:
//
//	-account read-only:vha-read:secret1 -account operator:vha-remediate:secret2
//
// (or the same items, one a line, in $VHA_SIM_ACCOUNTS). The -username/-password user
// stays, with the Administrator role. Without -account nothing changes: one user, vcsim's
// own login check, no permission checks.
//
// How: with accounts, vcsim is told to accept any non-empty login and this layer checks
// the user name and password itself (InvalidLogin otherwise), notes which account owns the
// session cookie vcsim hands out, and refuses, before vcsim sees it, every call whose
// privilege the account lacks. Read-only methods (the readOnlyMethods list of soap.go plus
// a few session calls) need only System.Read / System.View, which every role holds.

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Role names accepted by -account, as vSphere names them.
const (
	roleAdmin    = "admin"     // vSphere's Administrator: every privilege
	roleReadOnly = "read-only" // vSphere's Read-only: System.Anonymous, System.View, System.Read
	roleOperator = "operator"  // the remediator's privileges (docs/remediator.md)
)

// systemPrivileges are what vSphere's Read-only role holds; every role has them.
var systemPrivileges = []string{"System.Anonymous", "System.View", "System.Read"}

// operatorPrivileges is what the remediator calls need (docs/remediator.md, "vCenter
// privileges"): power on and reset, answering a re-registered VM's question, unregister and
// register, relocate (cold and hot), host maintenance mode, cancelling its own overdue
// tasks, and restoring a re-registered VM's attributes, permissions and cluster membership.
// The remediator never powers a VM off, so this role cannot either.
var operatorPrivileges = []string{
	"VirtualMachine.Interact.PowerOn",
	"VirtualMachine.Interact.Reset",
	"VirtualMachine.Interact.AnswerQuestion",
	"VirtualMachine.Inventory.Register",
	"VirtualMachine.Inventory.Unregister",
	"Resource.AssignVMToPool",
	"Resource.ColdMigrate",
	"Resource.HotMigrate",
	"Host.Config.Maintenance",
	"Global.CancelTask",
	"Global.SetCustomField",
	"Authorization.ModifyPermissions", // the VM's own permissions onto a re-registered VM
	"Host.Inventory.EditCluster",      // its DRS group / rule / override membership
}

var roles = map[string]map[string]bool{
	roleReadOnly: privSet(systemPrivileges),
	roleOperator: privSet(append(append([]string{}, systemPrivileges...), operatorPrivileges...)),
	roleAdmin:    nil, // nil: all
}

func privSet(ps []string) map[string]bool {
	m := make(map[string]bool, len(ps))
	for _, p := range ps {
		m[p] = true
	}
	return m
}

type account struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	password string
}

func (a *account) has(priv string) bool {
	set := roles[a.Role]
	return set == nil || set[priv]
}

// accountList is the -account flag (repeatable).
type accountList []account

func (l *accountList) String() string {
	if l == nil {
		return ""
	}
	names := make([]string, 0, len(*l))
	for _, a := range *l {
		names = append(names, a.Role+":"+a.Username)
	}
	return strings.Join(names, ",")
}

// Set parses ROLE:NAME:PASSWORD (the password may contain ':').
func (l *accountList) Set(v string) error {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return errors.New("want ROLE:NAME:PASSWORD (ROLE read-only, operator or admin)")
	}
	if _, ok := roles[parts[0]]; !ok {
		if ok, err := derivedRole(parts[0]); err != nil { // roles.go: operator-PRIV,...
			return err
		} else if !ok {
			return fmt.Errorf("unknown role %q (read-only, operator or admin)", parts[0])
		}
	}
	for _, a := range *l {
		if a.Username == parts[1] {
			return fmt.Errorf("account %q given twice", parts[1])
		}
	}
	*l = append(*l, account{Role: parts[0], Username: parts[1], password: parts[2]})
	return nil
}

// accountFileList is the -account-file flag (repeatable): ROLE:NAME:FILE, the password
// read from FILE (a container secret), so that it is on no command line.
type accountFileList struct{ l *accountList }

func (f accountFileList) String() string { return "" }

func (f accountFileList) Set(v string) error {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 || parts[2] == "" {
		return errors.New("want ROLE:NAME:FILE (ROLE read-only, operator or admin)")
	}
	b, err := os.ReadFile(parts[2])
	if err != nil {
		return fmt.Errorf("password file: %v", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" || strings.ContainsAny(pw, "\r\n") {
		return fmt.Errorf("password file %s: want one non-empty line", parts[2])
	}
	return f.l.Set(parts[0] + ":" + parts[1] + ":" + pw)
}

// accountsFromEnv adds the accounts of $VHA_SIM_ACCOUNTS (one ROLE:NAME:PASSWORD a line),
// so that passwords need not be on the command line.
func accountsFromEnv(l *accountList) error {
	for i, line := range strings.Split(os.Getenv("VHA_SIM_ACCOUNTS"), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := l.Set(line); err != nil {
			return fmt.Errorf("VHA_SIM_ACCOUNTS line %d: %v", i+1, err)
		}
	}
	return nil
}

// accountTable is the running simulator's users and which session belongs to whom.
type accountTable struct {
	byName   map[string]*account
	mu       sync.Mutex
	sessions map[string]*account // session cookie value -> account
	tickets  map[string]*account // clone ticket -> account
}

// accounts is nil unless -account is given: then every SOAP call is checked.
var accounts *accountTable

// setupAccounts enables the permission layer when extra accounts are configured; the
// -username/-password user is the Administrator. vcsim is then set to accept any non-empty
// login (DefaultLogin), and serve checks user names and passwords itself.
func setupAccounts(cfg *config, svc *simulator.Service) error {
	if len(cfg.accounts) == 0 {
		return nil
	}
	t := &accountTable{byName: map[string]*account{}, sessions: map[string]*account{}, tickets: map[string]*account{}}
	all := append(accountList{{Username: cfg.username, Role: roleAdmin, password: cfg.password}}, cfg.accounts...)
	for i := range all {
		a := all[i]
		if _, dup := t.byName[a.Username]; dup {
			return fmt.Errorf("-account %q: the name is already taken (by -username or another -account)", a.Username)
		}
		t.byName[a.Username] = &a
	}
	accounts = t
	svc.Listen.User = simulator.DefaultLogin
	return nil
}

// vapiLoginOK checks a vAPI (REST) session login like the SOAP one: any configured account
// with its own password, or the -username/-password user when there are no accounts.
func vapiLoginOK(cfg *config, user, password string) bool {
	if accounts == nil {
		return user == cfg.username && password == cfg.password
	}
	a := accounts.byName[user]
	return a != nil && a.password == password
}

// readyAccounts lists the users (without passwords) for the ready line.
func readyAccounts(cfg *config) []account {
	if len(cfg.accounts) == 0 {
		return nil
	}
	out := []account{{Username: cfg.username, Role: roleAdmin}}
	for _, a := range cfg.accounts {
		out = append(out, account{Username: a.Username, Role: a.Role})
	}
	return out
}

// sessionFreeMethods change nothing in the inventory (session housekeeping); no privilege.
var sessionFreeMethods = map[string]bool{"Logout": true, "SetLocale": true}

// methodPrivileges: the privilege a call needs on its _this (the vSphere API reference's
// "Required Privileges"). Calls that depend on the object type or state are in
// privilegeFor. A mutating call found in neither needs the Administrator role.
var methodPrivileges = map[string]string{
	"PowerOnVM_Task":                  "VirtualMachine.Interact.PowerOn",
	"PowerOnMultiVM_Task":             "VirtualMachine.Interact.PowerOn",
	"PowerOffVM_Task":                 "VirtualMachine.Interact.PowerOff",
	"ShutdownGuest":                   "VirtualMachine.Interact.PowerOff",
	"ResetVM_Task":                    "VirtualMachine.Interact.Reset",
	"RebootGuest":                     "VirtualMachine.Interact.Reset",
	"SuspendVM_Task":                  "VirtualMachine.Interact.Suspend",
	"StandbyGuest":                    "VirtualMachine.Interact.Suspend",
	"AnswerVM":                        "VirtualMachine.Interact.AnswerQuestion",
	"UnregisterVM":                    "VirtualMachine.Inventory.Unregister",
	"RegisterVM_Task":                 "VirtualMachine.Inventory.Register",
	"CreateVM_Task":                   "VirtualMachine.Inventory.Create",
	"CloneVM_Task":                    "VirtualMachine.Provisioning.Clone",
	"MarkAsTemplate":                  "VirtualMachine.Provisioning.MarkAsTemplate",
	"MarkAsVirtualMachine":            "VirtualMachine.Provisioning.MarkAsVM",
	"ReconfigVM_Task":                 "VirtualMachine.Config.Settings",
	"CreateSnapshot_Task":             "VirtualMachine.State.CreateSnapshot",
	"RemoveSnapshot_Task":             "VirtualMachine.State.RemoveSnapshot",
	"RemoveAllSnapshots_Task":         "VirtualMachine.State.RemoveSnapshot",
	"RevertToSnapshot_Task":           "VirtualMachine.State.RevertToSnapshot",
	"RevertToCurrentSnapshot_Task":    "VirtualMachine.State.RevertToSnapshot",
	"EnterMaintenanceMode_Task":       "Host.Config.Maintenance",
	"ExitMaintenanceMode_Task":        "Host.Config.Maintenance",
	"RebootHost_Task":                 "Host.Config.Maintenance",
	"ShutdownHost_Task":               "Host.Config.Maintenance",
	"PowerDownHostToStandBy_Task":     "Host.Config.Power",
	"PowerUpHostFromStandBy_Task":     "Host.Config.Power",
	"DisconnectHost_Task":             "Host.Config.Connection",
	"ReconnectHost_Task":              "Host.Config.Connection",
	"AddHost_Task":                    "Host.Inventory.AddHostToCluster",
	"AddStandaloneHost_Task":          "Host.Inventory.AddStandaloneHost",
	"CreateClusterEx":                 "Host.Inventory.CreateCluster",
	"CreateCluster":                   "Host.Inventory.CreateCluster",
	"ReconfigureComputeResource_Task": "Host.Inventory.EditCluster",
	"ReconfigureCluster_Task":         "Host.Inventory.EditCluster",
	"CreateResourcePool":              "Resource.CreatePool",
	"UpdateConfig":                    "Resource.EditPool",
	"CreateFolder":                    "Folder.Create",
	"CreateDatacenter":                "Datacenter.Create",
	"SetCustomValue":                  "Global.SetCustomField",
	"setCustomValue":                  "Global.SetCustomField", // the WSDL name pyvmomi sends
	"SetField":                        "Global.SetCustomField",
	"AddCustomFieldDef":               "Global.ManageCustomFields",
	"RemoveCustomFieldDef":            "Global.ManageCustomFields",
	"RenameCustomFieldDef":            "Global.ManageCustomFields",
	"CancelTask":                      "Global.CancelTask",
	"PostEvent":                       "Global.LogEvent",
	"LogUserEvent":                    "Global.LogEvent",
	"TerminateSession":                "Sessions.TerminateSession",
	"UpdateServiceMessage":            "Sessions.GlobalMessage",
	"UpdateOptions":                   "Global.Settings",
	"SetEntityPermissions":            "Authorization.ModifyPermissions", // on the entity argument
	"RemoveEntityPermission":          "Authorization.ModifyPermissions",
	"ResetEntityPermissions":          "Authorization.ModifyPermissions",
}

// privilegeFor returns the privilege the call needs on m.This ("" = none beyond
// System.Read, which every account holds).
func privilegeFor(m *simulator.Method) string {
	if p, ok := methodPrivileges[m.Name]; ok {
		return p
	}
	switch m.Name {
	case "RelocateVM_Task", "MigrateVM_Task":
		// a powered-on VM is live-migrated (Resource.HotMigrate), else cold-migrated
		if vm, ok := simulator.Map.Get(m.This).(*simulator.VirtualMachine); ok {
			on := false
			simulator.Map.WithLock(vm, func() { on = vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn })
			if on {
				return "Resource.HotMigrate"
			}
		}
		return "Resource.ColdMigrate"
	case "Destroy_Task":
		return map[string]string{
			"VirtualMachine": "VirtualMachine.Inventory.Delete", "Folder": "Folder.Delete",
			"Datacenter": "Datacenter.Delete", "ClusterComputeResource": "Host.Inventory.DeleteCluster",
			"HostSystem": "Host.Inventory.RemoveHostFromCluster", "ResourcePool": "Resource.DeletePool",
		}[m.This.Type]
	case "Rename_Task":
		return map[string]string{
			"VirtualMachine": "VirtualMachine.Config.Rename", "Folder": "Folder.Rename",
			"Datacenter": "Datacenter.Rename", "ClusterComputeResource": "Host.Inventory.RenameCluster",
			"ResourcePool": "Resource.RenamePool",
		}[m.This.Type]
	case "MoveIntoFolder_Task":
		return "Folder.Move"
	}
	return ""
}

var returnvalRE = regexp.MustCompile(`<returnval>([^<]+)</returnval>`)

// serve runs the account checks for one SOAP call. It returns true when it has answered
// the call (a refused login, a NoPermission fault, or a login it passed to vcsim and
// recorded); false lets the middleware go on as without accounts.
func (t *accountTable) serve(w http.ResponseWriter, r *http.Request, body []byte, name string, next http.Handler) bool {
	if t == nil || name == "" {
		return false
	}
	switch name {
	case "Login":
		m, err := decodeSOAP(body)
		req, ok := (*types.Login)(nil), false
		if err == nil {
			req, ok = m.Body.(*types.Login)
		}
		if !ok {
			return false
		}
		a := t.byName[req.UserName]
		if a == nil || a.password != req.Password {
			writeSOAPFault(w, "Cannot complete login due to an incorrect user name or password.", &types.InvalidLogin{})
			return true
		}
		t.passAndRecord(w, r, next, a)
		return true
	case "LoginByToken", "LoginBySSPI", "LoginExtensionByCertificate", "LoginExtensionBySubjectName", "LoginExtensionByCertificateOrSubjectName":
		// no token service or extensions here: only the configured accounts log in
		writeSOAPFault(w, "Cannot complete login due to an incorrect user name or password.", &types.InvalidLogin{})
		return true
	case "CloneSession":
		m, err := decodeSOAP(body)
		if err != nil {
			return false
		}
		req, ok := m.Body.(*types.CloneSession)
		if !ok {
			return false
		}
		t.mu.Lock()
		a := t.tickets[req.CloneTicket]
		delete(t.tickets, req.CloneTicket)
		t.mu.Unlock()
		if a == nil {
			writeSOAPFault(w, "Cannot complete login due to an incorrect user name or password.", &types.InvalidLogin{})
			return true
		}
		t.passAndRecord(w, r, next, a)
		return true
	}
	if readOnlyMethods[name] || sessionFreeMethods[name] {
		if name == "Logout" {
			if c, err := r.Cookie(soap.SessionCookieName); err == nil {
				t.mu.Lock()
				delete(t.sessions, c.Value)
				t.mu.Unlock()
			}
		}
		return false
	}
	c, err := r.Cookie(soap.SessionCookieName)
	if err != nil || c.Value == "" {
		return false // not logged in: vcsim answers NotAuthenticated
	}
	t.mu.Lock()
	a := t.sessions[c.Value]
	t.mu.Unlock()
	if a == nil {
		return false // a session vcsim does not know either: NotAuthenticated from vcsim
	}
	if name == "AcquireCloneTicket" {
		rec := newBufferedResponse()
		next.ServeHTTP(rec, r)
		if sm := returnvalRE.FindSubmatch(rec.body.Bytes()); sm != nil {
			t.mu.Lock()
			t.tickets[string(sm[1])] = a
			t.mu.Unlock()
		}
		rec.flush(w, rec.body.Bytes())
		return true
	}
	m, err := decodeSOAP(body)
	if err != nil {
		return false // let vcsim produce the error
	}
	priv := privilegeFor(m)
	if priv == "" {
		if a.Role == roleAdmin {
			return false
		}
		// a mutating call this table does not know: only the Administrator may
		priv = "System.Admin." + name
	}
	if a.has(priv) {
		return false
	}
	obj := m.This
	switch req := m.Body.(type) { // privileges checked on an argument, not on _this
	case *types.SetEntityPermissions:
		obj = req.Entity
	case *types.RemoveEntityPermission:
		obj = req.Entity
	case *types.ResetEntityPermissions:
		obj = req.Entity
	}
	writeSOAPFault(w, "Permission to perform this operation was denied.",
		&types.NoPermission{Object: obj, PrivilegeId: priv})
	return true
}

// passAndRecord lets vcsim run a login and remembers which account owns the new session.
func (t *accountTable) passAndRecord(w http.ResponseWriter, r *http.Request, next http.Handler, a *account) {
	rec := newBufferedResponse()
	next.ServeHTTP(rec, r)
	resp := http.Response{Header: rec.header}
	for _, c := range resp.Cookies() {
		if c.Name == soap.SessionCookieName && c.Value != "" {
			t.mu.Lock()
			t.sessions[c.Value] = a
			t.mu.Unlock()
		}
	}
	rec.flush(w, rec.body.Bytes())
}
