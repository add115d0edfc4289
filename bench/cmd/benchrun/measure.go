package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// sim is a running graphsim.
type sim struct {
	cmd *exec.Cmd
	url string
	log string
}

// startSim starts graphsim on a free loopback port and waits for its
// "graphsim listening on http://ADDR" line.
func startSim(bin string, devices int, latency time.Duration, dir string) (*sim, error) {
	args := []string{"-addr", "127.0.0.1:0", "-devices", fmt.Sprint(devices)}
	if latency > 0 {
		args = append(args, "-latency", latency.String())
	}
	return startSimArgs(bin, args, dir, "graphsim.log")
}

// startSimArgs starts graphsim with args (which must listen on a free port),
// its output into logName in dir.
func startSimArgs(bin string, args []string, dir, logName string) (*sim, error) {
	logPath := filepath.Join(dir, logName)
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if u, ok := strings.CutPrefix(line, "graphsim listening on "); ok && !sent {
				found <- strings.TrimSpace(u)
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case u, ok := <-found:
		if ok && u != "" {
			return &sim{cmd: cmd, url: u, log: logPath}, nil
		}
	case <-time.After(30 * time.Second):
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, fmt.Errorf("graphsim did not start (see %s)", logPath)
}

func (s *sim) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// sample is one run of one program.
type sample struct {
	cpu, wall float64 // seconds
	rssKB     int64   // peak RSS (rusage ru_maxrss, KB on Linux)
	outBytes  int64   // size of the output file, 0 for drop
}

// runOnce runs one program to completion and measures it from its rusage:
// the child alone, never graphsim. A non-zero exit or an output file that
// does not hold exactly want devices, one per line, is an error.
func runOnce(ctx context.Context, p program, ps *paths, url string, want int, timeout time.Duration) (sample, error) {
	out := filepath.Join(ps.tmp, p.name+".out")
	_ = os.Remove(out)
	defer os.Remove(out)
	var env []string
	if p.before != nil {
		var err error
		if env, err = p.before(ps); err != nil {
			return sample{}, fmt.Errorf("%s: preparing the destination: %v", p.name, err)
		}
	}
	argv, err := p.command(ps, url, out)
	if err != nil {
		return sample{}, err
	}
	logPath := filepath.Join(ps.tmp, p.name+".log")
	s, err := measure(ctx, argv, env, nil, logPath, timeout)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %v", p.name, err)
	}
	if p.writes {
		lines, size, err := countDevices(out)
		if err != nil {
			return s, fmt.Errorf("%s: %v", p.name, err)
		}
		if lines != want {
			return s, fmt.Errorf("%s wrote %d devices, graphsim served %d (output %s, log %s):\n%s",
				p.name, lines, want, out, logPath, tail(logPath, 20))
		}
		s.outBytes = size
	}
	if p.verify != nil {
		if err := p.verify(ps, want); err != nil {
			return s, fmt.Errorf("%s: %v (log %s)", p.name, err, logPath)
		}
	}
	return s, nil
}

// measure runs argv to completion, its output into logPath (its stdout
// into stdout instead when not nil), with env added to this process'
// environment, and measures it from its rusage: the child alone. A non-zero
// exit is an error that quotes the last lines of the log.
func measure(ctx context.Context, argv, env []string, stdout io.Writer, logPath string, timeout time.Duration) (sample, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return sample{}, err
	}
	defer logf.Close()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	runErr := cmd.Run()
	wall := time.Since(start).Seconds()
	if runErr != nil {
		return sample{}, fmt.Errorf("%v after %.1fs\n%s\n--- last lines of %s:\n%s",
			runErr, wall, strings.Join(argv, " "), logPath, tail(logPath, 20))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return sample{}, errors.New("no rusage on this platform")
	}
	return sample{cpu: tvSeconds(ru.Utime) + tvSeconds(ru.Stime), wall: wall, rssKB: ru.Maxrss}, nil
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// countDevices counts the lines of an output file, checking that each one is
// a JSON object ({...}) and that the file ends with a newline.
func countDevices(path string) (int, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	n := 0
	var size int64
	for {
		line, err := r.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) { // a line over 1 MiB
			var more []byte
			more, err = r.ReadSlice('\n')
			line = append(append([]byte(nil), line...), more...)
		}
		size += int64(len(line))
		if err == io.EOF {
			if len(line) > 0 {
				return n, size, fmt.Errorf("%s: last line has no newline", path)
			}
			return n, size, nil
		}
		if err != nil {
			return n, size, err
		}
		n++
		body := bytes.TrimRight(line, "\r\n")
		if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
			return n, size, fmt.Errorf("%s: line %d is not a JSON object: %.80q", path, n, body)
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
