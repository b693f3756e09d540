package provider

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	debounce = 100 * time.Millisecond
	// quiet is how long a step waits for reloads it does not expect: several debounces, so a
	// late event on a loaded machine still lands inside it.
	quiet = 600 * time.Millisecond
)

// recorder counts onChange calls and keeps what the config file held at each, read through the
// watched path as the server's ReloadFile does ("<missing>" when there is no file).
type recorder struct {
	path string
	mu   sync.Mutex
	got  []string
}

func (r *recorder) onChange() {
	b, err := os.ReadFile(r.path)
	s := string(b)
	if errors.Is(err, fs.ErrNotExist) {
		s = "<missing>"
	} else if err != nil {
		s = "error: " + err.Error()
	}
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
}

func (r *recorder) loads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

// configMap lays out dir as a kubelet ConfigMap volume: gatehouse.yaml -> ..data/gatehouse.yaml,
// ..data -> ts, ts/gatehouse.yaml holding content.
func configMap(t *testing.T, dir, ts, content string) string {
	t.Helper()
	mkdir(t, filepath.Join(dir, ts))
	write(t, filepath.Join(dir, ts, "gatehouse.yaml"), content)
	symlink(t, ts, filepath.Join(dir, "..data"))
	link := filepath.Join(dir, "gatehouse.yaml")
	symlink(t, filepath.Join("..data", "gatehouse.yaml"), link)
	return link
}

// kubeletSwap updates a configMap volume the way kubelet's atomic writer does: a new timestamped
// directory, then a new ..data symlink renamed over the old one.
func kubeletSwap(t *testing.T, dir, ts, content string) {
	t.Helper()
	mkdir(t, filepath.Join(dir, ts))
	write(t, filepath.Join(dir, ts, "gatehouse.yaml"), content)
	symlink(t, ts, filepath.Join(dir, "..data_tmp"))
	rename(t, filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
}

// TestWatchFile runs each case's steps against a live watch; after each step the watch must have
// called onChange exactly reloads times in all (waiting for them, then staying quiet), and the
// last call must have read last.
func TestWatchFile(t *testing.T) {
	type step struct {
		name    string
		do      func(t *testing.T, dir string)
		reloads int
		last    string
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path to watch
		steps []step
	}{
		{
			name: "plain file",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "gatehouse.yaml")
				write(t, p, "one")
				return p
			},
			steps: []step{
				{"in-place write", func(t *testing.T, dir string) {
					write(t, filepath.Join(dir, "gatehouse.yaml"), "two")
				}, 1, "two"},
				{"editor rename-write", func(t *testing.T, dir string) {
					tmp := filepath.Join(dir, ".gatehouse.yaml.swp")
					write(t, tmp, "three")
					rename(t, tmp, filepath.Join(dir, "gatehouse.yaml"))
				}, 2, "three"},
				{"same content written again", func(t *testing.T, dir string) {
					// A rewrite with a new mtime still reloads: it is how an operator makes the
					// gateway read the files a config names again.
					time.Sleep(10 * time.Millisecond)
					write(t, filepath.Join(dir, "gatehouse.yaml"), "three")
				}, 3, "three"},
				{"removed", func(t *testing.T, dir string) {
					if err := os.Remove(filepath.Join(dir, "gatehouse.yaml")); err != nil {
						t.Fatal(err)
					}
				}, 4, "<missing>"},
				{"created again", func(t *testing.T, dir string) {
					write(t, filepath.Join(dir, "gatehouse.yaml"), "four")
				}, 5, "four"},
			},
		},
		{
			name: "unrelated file next to a plain file",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "gatehouse.yaml")
				write(t, p, "one")
				return p
			},
			steps: []step{
				{"unrelated file written", func(t *testing.T, dir string) {
					write(t, filepath.Join(dir, "other.yaml"), "x")
					rename(t, filepath.Join(dir, "other.yaml"), filepath.Join(dir, "other2.yaml"))
				}, 0, ""},
				// The watch is still live: a real change after the ignored ones reloads once.
				{"config written", func(t *testing.T, dir string) {
					write(t, filepath.Join(dir, "gatehouse.yaml"), "two")
				}, 1, "two"},
			},
		},
		{
			name: "kubelet ConfigMap volume",
			setup: func(t *testing.T, dir string) string {
				return configMap(t, dir, "..2026_01", "one")
			},
			steps: []step{
				{"symlink swap", func(t *testing.T, dir string) {
					kubeletSwap(t, dir, "..2026_02", "two")
				}, 1, "two"},
				{"old timestamped directory deleted", func(t *testing.T, dir string) {
					if err := os.RemoveAll(filepath.Join(dir, "..2026_01")); err != nil {
						t.Fatal(err)
					}
				}, 1, "two"},
				{"unrelated files in both directories", func(t *testing.T, dir string) {
					write(t, filepath.Join(dir, "notes.txt"), "x")
					write(t, filepath.Join(dir, "..2026_02", "other.yaml"), "x")
				}, 1, "two"},
				{"second swap", func(t *testing.T, dir string) {
					kubeletSwap(t, dir, "..2026_03", "three")
					if err := os.RemoveAll(filepath.Join(dir, "..2026_02")); err != nil {
						t.Fatal(err)
					}
				}, 2, "three"},
			},
		},
		{
			name: "symlink to a file in another directory",
			setup: func(t *testing.T, dir string) string {
				for _, d := range []string{"a", "b", "etc"} {
					mkdir(t, filepath.Join(dir, d))
				}
				write(t, filepath.Join(dir, "a", "gatehouse.yaml"), "one")
				link := filepath.Join(dir, "etc", "gatehouse.yaml")
				symlink(t, filepath.Join(dir, "a", "gatehouse.yaml"), link)
				return link
			},
			steps: []step{
				{"target written in place", func(t *testing.T, dir string) {
					write(t, filepath.Join(dir, "a", "gatehouse.yaml"), "two")
				}, 1, "two"},
				{"unrelated file next to the target", func(t *testing.T, dir string) {
					write(t, filepath.Join(dir, "a", "other.yaml"), "x")
				}, 1, "two"},
				{"link pointed elsewhere", func(t *testing.T, dir string) {
					write(t, filepath.Join(dir, "b", "gatehouse.yaml"), "three")
					tmp := filepath.Join(dir, "etc", "gatehouse.yaml.tmp")
					symlink(t, filepath.Join(dir, "b", "gatehouse.yaml"), tmp)
					rename(t, tmp, filepath.Join(dir, "etc", "gatehouse.yaml"))
				}, 2, "three"},
				{"old target written", func(t *testing.T, dir string) {
					write(t, filepath.Join(dir, "a", "gatehouse.yaml"), "stale")
				}, 2, "three"},
				{"new target written in place", func(t *testing.T, dir string) {
					write(t, filepath.Join(dir, "b", "gatehouse.yaml"), "four")
				}, 3, "four"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := tt.setup(t, dir)
			rec := &recorder{path: path}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			if err := WatchFile(ctx, path, debounce, logger, rec.onChange); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.steps {
				s.do(t, dir)
				deadline := time.Now().Add(5 * time.Second)
				for len(rec.loads()) < s.reloads && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(quiet)
				got := rec.loads()
				if len(got) != s.reloads {
					t.Fatalf("after %q: %d reloads %q, want %d", s.name, len(got), got, s.reloads)
				}
				if s.reloads > 0 && got[len(got)-1] != s.last {
					t.Fatalf("after %q: the reload read %q, want %q", s.name, got[len(got)-1], s.last)
				}
			}
		})
	}
}
