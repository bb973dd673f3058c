// Command tput is a minimal TCP throughput meter for bench/net-throughput:
// `tput server ADDR` discards what it receives; `tput client ADDR SECONDS`
// sends for that long and prints the rate in Gbit/s. Static, so it runs in
// a busybox image.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: tput server ADDR | tput client ADDR SECONDS")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		l, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				continue
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	case "client":
		secs := 5.0
		if len(os.Args) > 3 {
			secs, _ = strconv.ParseFloat(os.Args[3], 64)
		}
		var c net.Conn
		var err error
		for i := 0; i < 50; i++ {
			if c, err = net.Dial("tcp", os.Args[2]); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 128<<10)
		var sent int64
		start := time.Now()
		deadline := start.Add(time.Duration(secs * float64(time.Second)))
		for time.Now().Before(deadline) {
			n, err := c.Write(buf)
			sent += int64(n)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		c.Close()
		fmt.Printf("%.2f\n", float64(sent)*8/time.Since(start).Seconds()/1e9)
	}
}
