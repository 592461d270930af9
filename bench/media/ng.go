package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// The rtpengine side of the comparison: rtpengine (Debian rtpengine-daemon,
// userspace only) driven over its ng control protocol (bencode over UDP on
// loopback) with the same offer/answer the SIP layer would make: plain RTP
// (RTP/AVP) from the inside endpoint, SRTP with SDES (RTP/SAVP) towards the
// outside endpoint, so rtpengine decrypts one direction and encrypts the
// other exactly as Palisade's relay does.

func benc(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case string:
		fmt.Fprintf(b, "%d:%s", len(x), x)
	case int:
		fmt.Fprintf(b, "i%de", x)
	case []string:
		b.WriteByte('l')
		for _, e := range x {
			benc(b, e)
		}
		b.WriteByte('e')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('d')
		for _, k := range keys {
			benc(b, k)
			benc(b, x[k])
		}
		b.WriteByte('e')
	default:
		panic(fmt.Sprintf("bencode: %T", v))
	}
}

// bdec decodes one bencoded value; dictionaries become map[string]any.
func bdec(s []byte) (any, []byte, error) {
	if len(s) == 0 {
		return nil, nil, errors.New("bencode: short")
	}
	switch {
	case s[0] == 'i':
		e := bytes.IndexByte(s, 'e')
		if e < 0 {
			return nil, nil, errors.New("bencode: int")
		}
		n, err := strconv.Atoi(string(s[1:e]))
		return n, s[e+1:], err
	case s[0] == 'l' || s[0] == 'd':
		dict := s[0] == 'd'
		var l []any
		s = s[1:]
		for len(s) > 0 && s[0] != 'e' {
			v, rest, err := bdec(s)
			if err != nil {
				return nil, nil, err
			}
			l, s = append(l, v), rest
		}
		if len(s) == 0 {
			return nil, nil, errors.New("bencode: unterminated")
		}
		if !dict {
			return l, s[1:], nil
		}
		m := map[string]any{}
		for i := 0; i+1 < len(l); i += 2 {
			k, _ := l[i].(string)
			m[k] = l[i+1]
		}
		return m, s[1:], nil
	case s[0] >= '0' && s[0] <= '9':
		c := bytes.IndexByte(s, ':')
		if c < 0 {
			return nil, nil, errors.New("bencode: str")
		}
		n, err := strconv.Atoi(string(s[:c]))
		if err != nil || c+1+n > len(s) {
			return nil, nil, errors.New("bencode: strlen")
		}
		return string(s[c+1 : c+1+n]), s[c+1+n:], nil
	}
	return nil, nil, fmt.Errorf("bencode: bad byte %q", s[0])
}

type ngClient struct {
	conn   *net.UDPConn
	cookie int
	buf    []byte
}

func (c *ngClient) call(req map[string]any) (map[string]any, error) {
	c.cookie++
	ck := fmt.Sprintf("%d_%d", os.Getpid(), c.cookie)
	var b bytes.Buffer
	b.WriteString(ck + " ")
	benc(&b, req)
	for range 3 {
		if _, err := c.conn.Write(b.Bytes()); err != nil {
			return nil, err
		}
		c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, err := c.conn.Read(c.buf)
			if err != nil {
				break // timeout: send again
			}
			sp := bytes.IndexByte(c.buf[:n], ' ')
			if sp < 0 || string(c.buf[:sp]) != ck {
				continue // a late reply to an earlier try
			}
			v, _, err := bdec(c.buf[sp+1 : n])
			if err != nil {
				return nil, err
			}
			m, _ := v.(map[string]any)
			if m["result"] != "ok" && m["result"] != "pong" {
				return m, fmt.Errorf("ng %v: %v %v", req["command"], m["result"], m["error-reason"])
			}
			return m, nil
		}
	}
	return nil, fmt.Errorf("ng %v: no reply", req["command"])
}

// rtpengineRelay runs rtpengine for one measurement.
type rtpengineRelay struct {
	cmd *exec.Cmd
	ng  *ngClient
	dir string
	ids []string
}

func startRtpengine(o loadOpts) (*rtpengineRelay, error) {
	bin, err := exec.LookPath("rtpengine")
	if err != nil {
		return nil, errors.New("install Debian package rtpengine-daemon (or -relays palisade)")
	}
	dir, err := os.MkdirTemp("", "bench-media-rtpengine")
	if err != nil {
		return nil, err
	}
	ngPort, cliPort := freeUDP(), freeTCP()
	conf := fmt.Sprintf("[rtpengine]\ntable = -1\ninterface = 127.0.0.1\nlisten-ng = 127.0.0.1:%d\nlisten-cli = 127.0.0.1:%d\n"+
		"port-min = %d\nport-max = %d\ntimeout = 60\ndelete-delay = 0\nlog-level = 3\nlog-stderr = true\nforeground = true\n",
		ngPort, cliPort, o.portMin, o.portMax)
	cf := filepath.Join(dir, "rtpengine.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	args := []string{"--config-file=" + cf, "--num-threads=" + strconv.Itoa(o.rtpeThreads)}
	if o.realtime > 0 {
		args = append(args, "--scheduling=fifo", "--priority="+strconv.Itoa(o.realtime))
	}
	// bounded lifetime even if we die: timeout(1) ends it
	argv := append([]string{"--kill-after=5", strconv.Itoa(int(o.dur.Seconds()) + 120), bin}, args...)
	cmd := exec.Command("timeout", argv...)
	if o.relayCPUs != "" {
		cmd = exec.Command("taskset", append([]string{"-c", o.relayCPUs, "timeout"}, argv...)...)
	}
	ef, err := os.Create(filepath.Join(dir, "rtpengine.err"))
	if err != nil {
		return nil, err
	}
	defer ef.Close() // the child has its own copy
	cmd.Stderr = ef
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ngPort})
	if err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	r := &rtpengineRelay{cmd: cmd, ng: &ngClient{conn: conn, buf: make([]byte, 65536)}, dir: dir}
	for range 100 { // until it listens (a refused datagram fails the call at once)
		if _, err = r.ng.call(map[string]any{"command": "ping"}); err == nil {
			return r, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.stop()
	log, _ := os.ReadFile(filepath.Join(dir, "rtpengine.err"))
	return nil, fmt.Errorf("rtpengine did not answer ng ping: %v; its log: %s", err, bytes.TrimSpace(log))
}

func freeUDP() int {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func freeTCP() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *rtpengineRelay) name() string { return "rtpengine" }

// pid is rtpengine's own process (under taskset and timeout, which exec it
// or wait for it).
func (r *rtpengineRelay) pid() int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", r.cmd.Process.Pid, r.cmd.Process.Pid))
	if f := bytes.Fields(b); len(f) > 0 {
		if p, err := strconv.Atoi(string(f[0])); err == nil {
			return p
		}
	}
	return r.cmd.Process.Pid
}

func (r *rtpengineRelay) offer(id string, sdp []byte) ([]byte, error) {
	r.ids = append(r.ids, id)
	m, err := r.ng.call(map[string]any{"command": "offer", "call-id": id, "from-tag": "a" + id, "sdp": string(sdp),
		"transport-protocol": "RTP/SAVP", "replace": []string{"origin", "session-connection"}, "ICE": "remove"})
	if err != nil {
		return nil, err
	}
	s, _ := m["sdp"].(string)
	return []byte(s), nil
}

func (r *rtpengineRelay) answer(id string, sdp []byte) ([]byte, error) {
	m, err := r.ng.call(map[string]any{"command": "answer", "call-id": id, "from-tag": "a" + id, "to-tag": "b" + id, "sdp": string(sdp),
		"replace": []string{"origin", "session-connection"}, "ICE": "remove"})
	if err != nil {
		return nil, err
	}
	s, _ := m["sdp"].(string)
	return []byte(s), nil
}

func (r *rtpengineRelay) memKiB() (heap uint64) { return 0 }

func (r *rtpengineRelay) closeCalls() {
	for _, id := range r.ids {
		r.ng.call(map[string]any{"command": "delete", "call-id": id, "from-tag": "a" + id})
	}
	r.ids = nil
}

func (r *rtpengineRelay) stop() {
	r.ng.conn.Close()
	r.cmd.Process.Signal(os.Interrupt) // timeout passes it on to rtpengine
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill() // ours, by PID
		<-done
	}
	log, _ := os.ReadFile(filepath.Join(r.dir, "rtpengine.err"))
	if len(log) > 0 {
		fmt.Fprintf(os.Stderr, "rtpengine said: %s\n", bytes.TrimSpace(log))
	}
	os.RemoveAll(r.dir)
}
