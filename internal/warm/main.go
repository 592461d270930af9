package main

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/creack/pty"
	_ "github.com/emiago/sipgo"
	_ "github.com/miekg/dns"
	_ "github.com/pion/rtcp"
	_ "github.com/pion/rtp"
	_ "github.com/pion/sdp/v3"
	_ "github.com/pion/srtp/v3"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/net/ipv4"
	_ "modernc.org/sqlite"
)

func main() {}
