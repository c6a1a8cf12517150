// A vCenter for tests: govmomi's simulator (Debian's golang-github-vmware-govmomi-dev) with a
// chosen inventory, on a loopback port over TLS, with one user and password. It prints the
// SDK URL and the certificate's SHA-256 fingerprint on one line, then serves until killed.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("l", "127.0.0.1:0", "address to listen on")
	user := flag.String("username", "plant", "the one user")
	pass := flag.String("password", "plant-pass", "its password")
	dc := flag.Int("dc", 1, "datacenters")
	cluster := flag.Int("cluster", 1, "clusters per datacenter")
	clusterHost := flag.Int("cluster-host", 3, "hosts per cluster")
	host := flag.Int("host", 1, "standalone hosts per datacenter")
	vm := flag.Int("vm", 2, "VMs per host and per cluster")
	ds := flag.Int("ds", 1, "datastores per datacenter")
	idle := flag.Duration("idle", 0, "sessions idle this long expire (0: never)")
	certFile := flag.String("cert", "", "PEM certificate (made with -key, for 127.0.0.1 and localhost, when missing)")
	keyFile := flag.String("key", "", "PEM private key")
	onlyCert := flag.Bool("only-cert", false, "make the certificate and key, then exit")
	powerOff := flag.String("power-off", "", "a VM to have powered off, by name")
	flag.Parse()

	// govmomi's default certificate has a 1024-bit RSA key, which no current TLS client
	// accepts: a P-256 one, kept in files so a restarted simulator presents the same.
	if _, err := os.Stat(*certFile); err != nil {
		if err := makeCert(*certFile, *keyFile); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if *onlyCert {
		return
	}
	pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	model := simulator.VPX()
	model.Datacenter = *dc
	model.Cluster = *cluster
	model.ClusterHost = *clusterHost
	model.Host = *host
	model.Machine = *vm
	model.Datastore = *ds
	if err := model.Create(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, entity := range simulator.Map.All("VirtualMachine") {
		if vm, ok := entity.(*simulator.VirtualMachine); ok && vm.Name == *powerOff {
			vm.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
			vm.Summary.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
		}
	}
	if *idle > 0 {
		simulator.SessionIdleTimeout = *idle
	}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	server := model.Service.NewServer()
	sum := sha256.Sum256(pair.Certificate[0])
	hexed := make([]string, len(sum))
	for i, b := range sum {
		hexed[i] = fmt.Sprintf("%02X", b)
	}
	u := *server.URL
	u.User = nil
	fmt.Printf("%s SHA256:%s\n", u.String(), strings.Join(hexed, ":"))
	os.Stdout.Sync()
	for {
		time.Sleep(time.Hour)
	}
}

func makeCert(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	template := x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "vcsim.plant.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, &template, &template, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDer, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile+".new", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDer}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(certFile+".new", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	if err := os.Rename(keyFile+".new", keyFile); err != nil {
		return err
	}
	return os.Rename(certFile+".new", certFile)
}
