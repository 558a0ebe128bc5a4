// Command vha-sim runs a vCenter simulator (govmomi's vcsim, VPX model) shaped for
// vSphere HA work: HA/DRS-enabled clusters, an HA master per cluster, guest heartbeats,
// custom attributes, a loopback-only fault-injection HTTP API and a "strict" SOAP layer
// that refuses what a real vCenter refuses where vcsim is permissive.
//
// See docs/simulator.md for the flags, the ready line and the fault API.
package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

type config struct {
	listen            string
	apiListen         string
	datacenters       int
	clusters          int
	hosts             int
	standaloneHosts   int
	vms               int
	standaloneVMs     int
	faultDomains      int
	username          string
	password          string
	accounts          accountList // -account / $VHA_SIM_ACCOUNTS: more users, with roles (accounts.go)
	certFile          string
	keyFile           string
	certHosts         []string
	strict            bool
	strictSource      bool
	realVCenter       bool
	paging            bool
	incremental       bool
	exitWithParent    bool
	reconcileInterval time.Duration
	idleTimeout       time.Duration
	verbose           bool
	vapi              bool
	tags              bool
}

// logf writes the simulator's own diagnostics to stderr (vcsim's chatter is discarded
// unless -verbose is given).
var logf = log.New(os.Stderr, "vha-sim: ", log.LstdFlags|log.Lmicroseconds).Printf

func parseFlags(args []string) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("vha-sim", flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:0", "SOAP/SDK listen address (loopback only; port 0 picks a free port)")
	fs.StringVar(&cfg.apiListen, "api-listen", "127.0.0.1:0", "fault-injection API listen address (loopback only)")
	fs.IntVar(&cfg.datacenters, "datacenters", 1, "number of datacenters")
	fs.IntVar(&cfg.clusters, "clusters", 2, "clusters per datacenter")
	fs.IntVar(&cfg.hosts, "hosts", 3, "hosts per cluster")
	fs.IntVar(&cfg.standaloneHosts, "standalone-hosts", 0, "standalone hosts per datacenter")
	fs.IntVar(&cfg.vms, "vms", 6, "VMs per cluster, spread round-robin over the cluster's hosts")
	fs.IntVar(&cfg.standaloneVMs, "standalone-vms", 0, "VMs per standalone host")
	fs.IntVar(&cfg.faultDomains, "fault-domains", 2, "HA-FaultDomain values (fd-a, fd-b, ...) assigned round-robin to each cluster's hosts; 0 = none")
	fs.StringVar(&cfg.username, "username", "user", "login user name (enforced)")
	fs.StringVar(&cfg.password, "password", "pass", "login password (enforced)")
	fs.Var(&cfg.accounts, "account", "another user, ROLE:NAME:PASSWORD (ROLE read-only, operator or admin; repeatable; also $VHA_SIM_ACCOUNTS, one a line); the -username user is then the Administrator and calls are checked against the caller's role")
	fs.Var(accountFileList{&cfg.accounts}, "account-file", "like -account, ROLE:NAME:FILE with the password read from FILE (one line; a container secret)")
	fs.StringVar(&cfg.certFile, "cert-file", "", "write the server certificate chain (PEM) here; reused with its key across restarts")
	fs.StringVar(&cfg.keyFile, "key-file", "", "private key file that goes with -cert-file (default: <cert-file>.key)")
	certHosts := fs.String("cert-hosts", "", "extra comma-separated DNS names / IPs for the TLS certificate (besides 127.0.0.1, ::1, localhost)")
	fs.BoolVar(&cfg.strict, "strict", true, "refuse operations that a real vCenter refuses but vcsim allows")
	fs.BoolVar(&cfg.strictSource, "strict-source", false, "with -strict, also refuse moving a VM off a host that is not connected")
	fs.BoolVar(&cfg.realVCenter, "real-vcenter", false, "do not announce quickStats and overallStatus changes to property collectors, as vCenter does not")
	fs.BoolVar(&cfg.paging, "paging", true, "page WaitForUpdatesEx and RetrievePropertiesEx as vCenter does (100 objects a page; see docs/simulator.md)")
	fs.BoolVar(&cfg.incremental, "incremental-delivery", true, "send WaitForUpdatesEx the changed properties of changed objects as vCenter does, re-collecting a filter only when the objects it reaches can change (false: vcsim's re-collection per change; see docs/simulator.md)")
	fs.BoolVar(&cfg.exitWithParent, "exit-with-parent", false, "exit when the parent process goes away")
	fs.DurationVar(&cfg.reconcileInterval, "reconcile-interval", 0, "period of the guest-agent safety-net reconciler (0 = auto: 200ms, longer above 2,000 VMs)")
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", 30*time.Second, "close a keep-alive SDK connection idle this long (Go 1.19's net/http did so at ReadHeaderTimeout, 30s; vCenter's reverse proxy closes idle client connections too)")
	fs.BoolVar(&cfg.verbose, "verbose", false, "log vcsim's own messages to stderr")
	fs.BoolVar(&cfg.vapi, "vapi", true, "serve the vAPI REST endpoint (/rest: sessions, tags); false answers 404 like a vCenter without it")
	fs.BoolVar(&cfg.tags, "tags", true, "seed demo tag categories and tags (see docs/simulator.md)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, h := range strings.Split(*certHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.certHosts = append(cfg.certHosts, h)
		}
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var err error
	if cfg.listen, err = loopbackAddr("-listen", cfg.listen); err != nil {
		return nil, err
	}
	if cfg.apiListen, err = loopbackAddr("-api-listen", cfg.apiListen); err != nil {
		return nil, err
	}
	counts := []struct {
		name string
		v    int
	}{
		{"-datacenters", cfg.datacenters}, {"-clusters", cfg.clusters}, {"-hosts", cfg.hosts},
		{"-standalone-hosts", cfg.standaloneHosts}, {"-vms", cfg.vms},
		{"-standalone-vms", cfg.standaloneVMs}, {"-fault-domains", cfg.faultDomains},
	}
	for _, c := range counts {
		if c.v < 0 {
			return nil, fmt.Errorf("%s must be >= 0", c.name)
		}
	}
	if cfg.faultDomains > 26 {
		return nil, errors.New("-fault-domains must be <= 26")
	}
	if cfg.vms > 0 && cfg.hosts == 0 && cfg.clusters > 0 {
		return nil, errors.New("-vms > 0 needs -hosts > 0")
	}
	if cfg.username == "" || cfg.password == "" {
		return nil, errors.New("-username and -password must not be empty")
	}
	if err := accountsFromEnv(&cfg.accounts); err != nil {
		return nil, err
	}
	if cfg.reconcileInterval != 0 && cfg.reconcileInterval < 10*time.Millisecond {
		return nil, errors.New("-reconcile-interval must be 0 (auto) or >= 10ms")
	}
	if cfg.idleTimeout <= 0 {
		return nil, errors.New("-idle-timeout must be > 0")
	}
	if cfg.certFile != "" {
		if cfg.certFile, err = filepath.Abs(cfg.certFile); err != nil {
			return nil, err
		}
		if cfg.keyFile == "" {
			cfg.keyFile = cfg.certFile + ".key"
		}
	}
	return cfg, nil
}

// loopbackAddr validates a host:port and refuses anything but a loopback address.
func loopbackAddr(name, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %v", name, addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%s %q: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed", name, addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("%s %q: bad port", name, addr)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(p)), nil
}

type readyLine struct {
	SDKURL   string    `json:"sdk_url"`
	APIURL   string    `json:"api_url"`
	Username string    `json:"username"`
	Password string    `json:"password"`
	CAFile   *string   `json:"ca_file"`
	PID      int       `json:"pid"`
	Accounts []account `json:"accounts,omitempty"` // with -account: every user and role, no passwords
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "vha-sim: %v\n", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "vha-sim: %v\n", err)
		os.Exit(1)
	}
}

func run(cfg *config) error {
	if !cfg.verbose {
		log.SetOutput(ioutil.Discard) // vcsim logs every WaitForUpdates round
	}
	started := time.Now()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	var parentGone <-chan struct{}
	if cfg.exitWithParent {
		parentGone = watchParent()
	}
	readyc := make(chan struct{})
	go func() { // a big inventory takes a while to build: stop promptly if asked to
		select {
		case <-readyc:
		case sig := <-sigs:
			logf("%s during start-up: exiting", sig)
			os.Exit(1)
		case <-parentGone:
			logf("parent process exited during start-up: exiting")
			os.Exit(1)
		}
	}()

	// Bind both listeners first so a busy port fails fast and cleanly.
	sdkLn, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("-listen: %v", err)
	}
	apiLn, err := net.Listen("tcp", cfg.apiListen)
	if err != nil {
		_ = sdkLn.Close()
		return fmt.Errorf("-api-listen: %v", err)
	}

	cert, err := loadOrCreateCert(cfg.certFile, cfg.keyFile, cfg.certHosts)
	if err != nil {
		return err
	}

	s, err := buildSimulator(cfg)
	if err != nil {
		return fmt.Errorf("building inventory: %v", err)
	}
	defer s.model.Remove() // temporary datastore directories
	if cfg.reconcileInterval == 0 {
		// Every SOAP call is reconciled as it happens; the loop is a safety net, so keep its
		// cost flat: 200ms, or 100µs per VM above 2,000 VMs (1s at 10,000).
		cfg.reconcileInterval = 200 * time.Millisecond
		if d := time.Duration(len(s.vms)) * 100 * time.Microsecond; d > cfg.reconcileInterval {
			cfg.reconcileInterval = d
		}
	}

	paging.setEnabled(cfg.paging)
	delivery.enabled.Store(cfg.incremental)
	sdkAddr := sdkLn.Addr().String()
	svc := s.model.Service
	svc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	svc.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(cfg.username, cfg.password)}
	if err := setupAccounts(cfg, svc); err != nil {
		return err
	}
	svc.RegisterEndpoints = true // the vAPI REST endpoint (sim/vapi.go)
	if err := initService(svc, sdkAddr); err != nil {
		return err
	}
	s.createAlarms()                      // sim/alarms.go
	s.initPerf()                          // sim/perfzeros.go
	s.initDatastores()                    // sim/datastores.go
	s.initSensors()                       // sim/sensors.go
	s.initGuests()                        // sim/guest.go
	s.initLicenses()                      // sim/licenses.go
	if err := s.initPools(); err != nil { // sim/pools.go
		return fmt.Errorf("creating resource pools: %v", err)
	}
	if cfg.vapi && cfg.tags {
		if err := s.seedTags(svc.ServeMux); err != nil {
			return fmt.Errorf("seeding tags: %v", err)
		}
	}

	sdkServer := &http.Server{
		Handler:           s.vapiMiddleware(sessionMiddleware(s.sdkMiddleware(paging.handler(svc.ServeMux)))),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       cfg.idleTimeout,
		ErrorLog:          log.New(ioutil.Discard, "", 0), // TLS probes, EOFs
	}
	tlsLn := tls.NewListener(sdkLn, &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	})
	apiServer := &http.Server{Handler: s.apiHandler(), ReadHeaderTimeout: 30 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- sdkServer.Serve(tlsLn) }()
	go func() { errc <- apiServer.Serve(apiLn) }()

	s.mu.Lock()
	s.reconcileAllLocked()
	s.mu.Unlock()
	s.refreshPoolStats() // sim/pools.go: from the VMs' reconciled quick stats
	stop := make(chan struct{})
	go s.reconcileLoop(cfg.reconcileInterval, stop)

	ready := readyLine{
		SDKURL:   "https://" + sdkAddr + "/sdk",
		APIURL:   "http://" + apiLn.Addr().String(),
		Username: cfg.username,
		Password: cfg.password,
		PID:      os.Getpid(),
		Accounts: readyAccounts(cfg),
	}
	if cfg.certFile != "" {
		ready.CAFile = &cfg.certFile
	}
	line, _ := json.Marshal(ready)
	if _, err := os.Stdout.Write(append(line, '\n')); err != nil {
		return err
	}
	_ = os.Stdout.Sync()
	logf("ready in %.2fs: %d hosts, %d VMs, strict=%v", time.Since(started).Seconds(),
		len(s.hosts), len(s.vms), s.strict.Load())
	close(readyc)

	var runErr error
	select {
	case sig := <-sigs:
		logf("%s: shutting down", sig)
	case <-parentGone:
		logf("parent process exited: shutting down")
	case err := <-errc:
		runErr = fmt.Errorf("server stopped: %v", err)
	}
	close(stop)
	_ = sdkServer.Close()
	_ = apiServer.Close()
	return runErr
}

// initService registers vcsim's SDK handlers on svc.ServeMux. vcsim's NewServer also starts
// its own listener, which we do not use: our listener (with the fault middleware in front)
// serves the same ServeMux, so that internal server is closed straight away.
func initService(svc *simulator.Service, sdkAddr string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("starting simulator service: %v", r)
		}
	}()
	inner := svc.NewServer()
	inner.Close()
	installDelivery() // sim/delivery.go

	// vcsim points clients at its own listener; point them at ours.
	simulator.Map.SessionManager().ServiceHostName = sdkAddr
	om := simulator.Map.OptionManager()
	for _, setting := range om.Setting {
		opt := setting.GetOptionValue()
		if v, ok := opt.Value.(string); ok && opt.Key == "vcsim.server.url" {
			if u, perr := url.Parse(v); perr == nil {
				u.Host = sdkAddr
				opt.Value = u.String()
			}
		}
	}
	return nil
}

// watchParent closes the returned channel when this process is re-parented (its parent died).
func watchParent() <-chan struct{} {
	ch := make(chan struct{})
	ppid := os.Getppid()
	go func() {
		for {
			time.Sleep(500 * time.Millisecond)
			if os.Getppid() != ppid {
				close(ch)
				return
			}
		}
	}()
	return ch
}
