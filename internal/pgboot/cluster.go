package pgboot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// clusterUser is who runs initdb and postgres: the invoking user, or the postgres OS user when
// invoked as root (Postgres refuses to run as root).
type clusterUser struct {
	cred *syscall.Credential // nil: run as ourselves
	uid  int
	gid  int
	name string
}

func lookupClusterUser() (clusterUser, error) {
	if os.Geteuid() != 0 {
		return clusterUser{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return clusterUser{}, errors.New("running as root and there is no postgres user to run the cluster as (Postgres refuses root): install postgresql, or set DATABASE_URL")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return clusterUser{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid, name: "postgres"}, nil
}

func (cu clusterUser) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	if cu.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cu.cred}
		cmd.Dir = "/" // root's working directory may be closed to postgres
	}
	return cmd
}

// checkReachable makes sure the cluster user can traverse every ancestor of dir.
func (cu clusterUser) checkReachable(dir string) error {
	if cu.cred == nil {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		reachable := mode&0o001 != 0 || (ok && int(st.Uid) == cu.uid && mode&0o100 != 0) || (ok && int(st.Gid) == cu.gid && mode&0o010 != 0)
		if !reachable {
			return fmt.Errorf("the %s user cannot enter %s (mode %v): run from a directory it can reach, or set DATABASE_URL", cu.name, d, mode)
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}

func ensureCluster(ctx context.Context, o Options) (*DB, error) {
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return nil, err
	}
	// Several processes (go test runs packages in parallel) may get here at once.
	unlock, err := lockFile(dataDir + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()

	bin := binDir()
	if bin == "" && o.Install {
		// Clusters in other data directories (the tests', the chaos harness's) may be starting
		// at the same moment: one apt-get at a time, and the others find its binaries.
		unlockInstall, err := lockFile(filepath.Join(os.TempDir(), "ledger-pg-install.lock"))
		if err != nil {
			return nil, err
		}
		if bin = binDir(); bin == "" {
			err = install(ctx, o.Log)
			bin = binDir()
		}
		unlockInstall()
		if err != nil {
			return nil, err
		}
	}
	if bin == "" {
		return nil, errors.New("no Postgres binaries found (looked at pg_config --bindir, /usr/lib/postgresql/*/bin and PATH): install postgresql (make run does so as root), or set DATABASE_URL")
	}
	cu, err := lookupClusterUser()
	if err != nil {
		return nil, err
	}

	db := &DB{Source: SourcePrivate, DataDir: dataDir}
	if port, ok := runningPort(ctx, cu, bin, dataDir); ok {
		db.Port = port
	} else {
		if err := initCluster(ctx, cu, bin, dataDir); err != nil {
			return nil, err
		}
		db.Port = o.Port
		if !portFree(db.Port) {
			if db.Port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		if err := startCluster(ctx, cu, bin, dataDir, db.Port); err != nil {
			return nil, err
		}
		db.Started = true
	}
	u, err := ensureDatabase(ctx, "127.0.0.1", db.Port, o.Database)
	if err != nil {
		return nil, err
	}
	db.URL = u
	return db, nil
}

func initCluster(ctx context.Context, cu clusterUser, bin, dataDir string) error {
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	if err := cu.checkReachable(dataDir); err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	if cu.cred != nil {
		if err := os.Chown(dataDir, cu.uid, cu.gid); err != nil {
			return err
		}
	}
	cmd := cu.command(ctx, filepath.Join(bin, "initdb"), "-D", dataDir, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, tail(out))
	}
	return nil
}

func startCluster(ctx context.Context, cu clusterUser, bin, dataDir string, port int) error {
	logFile := dataDir + ".log"
	// The log lives beside the data directory and must be writable by the cluster user.
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	if cu.cred != nil {
		if err := os.Chown(logFile, cu.uid, cu.gid); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", port)
	cmd := cu.command(ctx, filepath.Join(bin, "pg_ctl"), "-D", dataDir, "-l", logFile, "-o", opts, "-w", "-t", "60", "start")
	// A process group of its own: Ctrl-C on `make run` stops the ledger, not the cluster under it.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if out, err := cmd.CombinedOutput(); err != nil {
		logTail, _ := os.ReadFile(logFile)
		return fmt.Errorf("pg_ctl start: %w: %s\nserver log: %s", err, tail(out), tail(logTail))
	}
	return nil
}

// runningPort reports the port of a cluster already running in dataDir.
func runningPort(ctx context.Context, cu clusterUser, bin, dataDir string) (int, bool) {
	pid, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	if err := cu.command(ctx, filepath.Join(bin, "pg_ctl"), "-D", dataDir, "status").Run(); err != nil {
		return 0, false // stale pid file: pg_ctl start copes with it
	}
	// postmaster.pid: pid, data dir, start time, port, socket dir, listen address, …
	lines := strings.Split(string(pid), "\n")
	if len(lines) < 4 {
		return 0, false
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	return port, err == nil
}

// StopCluster stops the private cluster in dataDir (fast shutdown). It is nil when none runs.
func StopCluster(ctx context.Context, dataDir string) error {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err != nil {
		return nil
	}
	bin := binDir()
	if bin == "" {
		return errors.New("no pg_ctl found to stop the cluster")
	}
	cu, err := lookupClusterUser()
	if err != nil {
		return err
	}
	if err := cu.command(ctx, filepath.Join(bin, "pg_ctl"), "-D", dataDir, "status").Run(); err != nil {
		return nil
	}
	out, err := cu.command(ctx, filepath.Join(bin, "pg_ctl"), "-D", dataDir, "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, tail(out))
	}
	return nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("could not open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("could not lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// FreePort returns a loopback TCP port nothing listens on right now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last lines of a command's output for an error message.
func tail(b []byte) string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}
