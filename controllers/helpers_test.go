package controllers_test

import (
	"bytes"
	"os"
	"sync"

	"go.uber.org/zap/zapcore"
)

// syncBuffer collects the manager's logs so tests can search them.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if os.Getenv("CREDSYNC_TEST_LOGS") != "" {
		_, _ = os.Stderr.Write(p)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// zapDebug logs at V(1), so that tests see (and check) debug lines too.
func zapDebug() zapcore.Level { return zapcore.Level(-1) }
