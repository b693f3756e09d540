// Package provider tells the server when its configuration source changed: file changes (the
// directory is watched, since editors replace files by renaming, and so is a symlink's target's,
// as in Kubernetes ConfigMap volumes) debounced into one event.
package provider

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchFile calls onChange (from one goroutine, never concurrently) after path changed and then
// stayed quiet for debounce. A change is a new resolved path (path may be a symlink, or sit
// behind one: a Kubernetes ConfigMap volume swaps its ..data symlink), or a new size,
// modification time or content of the file it resolves to, or its appearance or disappearance.
// Other files in the watched directories do not count. It returns once the watch is set up; the
// watch ends when ctx is done.
func WatchFile(ctx context.Context, path string, debounce time.Duration, logger *slog.Logger, onChange func()) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	// The link's own directory sees symlink swaps and editors' rename-writes; the resolved file's
	// directory, when another, sees writes to the target, which raise no event next to the link.
	dir := filepath.Dir(abs)
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return fmt.Errorf("watch %s: %w", path, err)
	}
	last := statFile(abs)
	targetDir := dir
	retarget := func(st fileState) {
		// While the file cannot be resolved, keep watching where it was: its return there (a
		// symlink's target deleted and written anew) raises no event next to the link.
		next := targetDir
		if st.resolved != "" {
			next = filepath.Dir(st.resolved)
		}
		if next != dir && sameDir(dir, next) {
			// dir itself sits behind a symlink: a second watch would share the first's inotify
			// descriptor, and removing it later would end the watch on dir too.
			next = dir
		}
		if next != targetDir && targetDir != dir {
			// The directory may be gone already (kubelet deletes the old timestamped one), and
			// with it the watch.
			_ = w.Remove(targetDir)
		}
		if next != dir {
			// Adding again is a no-op while the watch lives, and renews it if the directory was
			// deleted and made anew under the same name; only a new directory's failure is news.
			if err := w.Add(next); err != nil && next != targetDir {
				logger.Warn("config watch: cannot watch the config file's target directory", "dir", next, "error", err.Error())
			}
		}
		targetDir = next
	}
	retarget(last)
	go func() {
		defer w.Close()
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				// Any name counts: a symlink swap renames ..data_tmp over ..data, never touching
				// the config file's own name. Whether it changed is decided once quiet.
				if ev.Op == fsnotify.Chmod {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(debounce)
				} else {
					timer.Reset(debounce)
				}
				fire = timer.C
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				logger.Warn("config watch error", "error", err.Error())
			case <-fire:
				fire = nil
				st := statFile(abs)
				retarget(st)
				if st == last {
					continue
				}
				last = st
				onChange()
			}
		}
	}()
	return nil
}

// fileState is what decides whether the config file changed; the zero value means it could not
// be read. The modification time counts even when the content is the same, so rewriting the file
// still reloads it (and with it the files it names, such as hmac_secret_file).
type fileState struct {
	resolved string
	size     int64
	mtime    int64
	sum      [sha256.Size]byte
}

func statFile(path string) fileState {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fileState{}
	}
	f, err := os.Open(resolved)
	if err != nil {
		return fileState{}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileState{}
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fileState{}
	}
	st := fileState{resolved: resolved, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	h.Sum(st.sum[:0])
	return st
}

// sameDir reports whether a and b name the same directory now.
func sameDir(a, b string) bool {
	ai, err := os.Stat(a)
	if err != nil {
		return false
	}
	bi, err := os.Stat(b)
	return err == nil && os.SameFile(ai, bi)
}
