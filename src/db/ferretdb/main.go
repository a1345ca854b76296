// Command ferretdb-launcher runs an embedded FerretDB (SQLite storage) on a
// free loopback port for abha-vault's default, no-setup database.
//
// Usage: ferretdb-launcher <data-dir> [listen-addr]   (default 127.0.0.1:0, a free port)
//
// SQLite runs in WAL mode (FerretDB's default) with synchronous=NORMAL unless
// FERRETDB_SQLITE_SYNCHRONOUS says otherwise (FULL: an fsync at every commit,
// durable across power loss; NORMAL: durable across process crashes).
//
// It prints one line, "MONGODB_URI=<uri>", once the listener is up, and exits
// on SIGINT/SIGTERM or when its standard input closes (its parent is gone).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: ferretdb-launcher <data-dir> [listen-addr]")
		os.Exit(2)
	}
	addr := "127.0.0.1:0"
	if len(os.Args) == 3 {
		addr = os.Args[2]
	}
	dir, err := filepath.Abs(os.Args[1])
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-launcher:", err)
		os.Exit(1)
	}

	sync := os.Getenv("FERRETDB_SQLITE_SYNCHRONOUS")
	switch sync {
	case "":
		sync = "normal"
	case "normal", "full", "NORMAL", "FULL":
	default:
		fmt.Fprintln(os.Stderr, "ferretdb-launcher: FERRETDB_SQLITE_SYNCHRONOUS must be normal or full")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { // the parent holds our stdin open; EOF means it has gone
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()

	// _id lookups use an index (see idindex.go): existing tables first, new ones as they appear.
	indexer := newIDPathIndexer(dir, func(err error) { fmt.Fprintln(os.Stderr, "ferretdb-launcher: _id index:", err) })
	indexer.pass(ctx)
	go indexer.run(ctx, 200*time.Millisecond)

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/?_pragma=synchronous(" + sync + ")",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-launcher:", err)
		os.Exit(1)
	}

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	fmt.Printf("MONGODB_URI=%s\n", f.MongoDBURI())
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-launcher:", err)
		os.Exit(1)
	}
}
