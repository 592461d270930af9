package sdnotify

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"
)

// JournalStream returns w such that journald, when stderr is connected to
// it ($JOURNAL_STREAM names stderr's device and inode, systemd.exec(5)),
// files each log record under its level: every record gets the syslog
// priority prefix "<N>" of sd-daemon(3) (error 3, warn 4, info 6, debug
// 7), so that `journalctl -p warning -u palisade` works. Elsewhere w is
// returned unchanged. w must get one record per Write, as slog's text and
// JSON handlers do.
func JournalStream(w io.Writer) io.Writer {
	if w != io.Writer(os.Stderr) || !stderrIsJournal() {
		return w
	}
	return &priorityWriter{w: w}
}

func stderrIsJournal() bool {
	env := os.Getenv("JOURNAL_STREAM")
	if env == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(os.Stderr.Fd()), &st); err != nil {
		return false
	}
	return env == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

type priorityWriter struct{ w io.Writer }

func (p *priorityWriter) Write(b []byte) (int, error) {
	line := make([]byte, 0, len(b)+3)
	line = append(line, '<', priority(b), '>')
	line = append(line, b...)
	if _, err := p.w.Write(line); err != nil {
		return 0, err
	}
	return len(b), nil
}

// priority reads the level of a text ("level=WARN") or JSON
// ("level":"WARN") record; info when there is none.
func priority(b []byte) byte {
	// The handler's own level field comes before any attribute, so the
	// first match of either form is it.
	var rest []byte
	first := len(b)
	for _, key := range []string{"level=", `"level":"`} {
		if i := bytes.Index(b, []byte(key)); i >= 0 && i < first {
			first, rest = i, b[i+len(key):]
		}
	}
	switch {
	case bytes.HasPrefix(rest, []byte("ERROR")):
		return '3'
	case bytes.HasPrefix(rest, []byte("WARN")):
		return '4'
	case bytes.HasPrefix(rest, []byte("DEBUG")):
		return '7'
	}
	return '6'
}
