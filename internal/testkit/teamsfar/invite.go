package teamsfar

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// onInvite applies the rules to an INVITE from the SBC, then the number's
// script.
func (d *Datacenter) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if code, reason := d.check(req); code != 0 {
		d.respond(req, tx, code, reason, nil)
		return
	}
	// Teams does not support delayed offer: an INVITE must carry an SDP
	// offer (the Direct Routing media path is negotiated on the INVITE's
	// offer; an SBC must convert a late offer from its PBX).
	if len(req.Body()) == 0 {
		d.respond(req, tx, 488, "Not Acceptable Here: an SDP offer is required", nil)
		return
	}
	// A re-INVITE (To tag set) with an offer is answered in its dialog.
	if tag, _ := req.To().Params.Get("tag"); tag != "" {
		res := sip.NewResponseFromRequest(req, 200, "OK", answerSDP(req.Body(), d.host()))
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: d.Name, Port: d.port(), UriParams: sip.HeaderParams{{K: "transport", V: "tls"}}}})
		d.far.record(Request{DC: d.idx, Req: req, Status: 200, Sent: []*sip.Response{res}})
		_ = tx.Respond(res)
		return
	}
	// "Direct Routing - SIP protocol": the called number is looked up in
	// the tenant as E.164; the examples' Request-URIs are sip:+<number>@…
	// A number without "+" finds no user.
	user := req.Recipient.User
	if !strings.HasPrefix(user, "+") {
		d.respond(req, tx, 404, "Not Found: the number must be E.164 with +", nil)
		return
	}
	d.far.mu.Lock()
	s := d.far.scripts[user]
	d.far.mu.Unlock()
	tag := newHex(8)
	sent := []*sip.Response{d.ring(req, tx, tag)}
	switch s.Action {
	case Decline:
		// The Teams user declined: 603 ends the call; an SBC that tries
		// another route rings the user again ("Trunk failover on outbound
		// calls": 4xx and 6xx complete a call).
		d.respond(req, tx, 603, "Decline", nil, sent...)
		return
	case Fork:
		// A user signed in on two devices: two early dialogs.
		sent = append(sent, d.ring(req, tx, newHex(8)))
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", answerSDP(req.Body(), d.host()))
	res.To().Params.Add("tag", tag)
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: d.Name, Port: d.port(), UriParams: sip.HeaderParams{{K: "transport", V: "tls"}}}})
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, OPTIONS, CANCEL, BYE, NOTIFY, REFER"))
	d.far.record(Request{DC: d.idx, Req: req, Status: 200, Sent: append(sent, res)})
	if err := tx.Respond(res); err != nil {
		d.far.log.Debug("teamsfar: 200 not sent", "err", err)
	}
	if s.Action == Transfer {
		go d.transfer(req, res, s)
	}
}

// ring sends 180 Ringing with the To tag of one early dialog.
func (d *Datacenter) ring(req *sip.Request, tx sip.ServerTransaction, tag string) *sip.Response {
	res := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
	res.To().Params.Add("tag", tag)
	_ = tx.Respond(res)
	return res
}

func (d *Datacenter) host() string {
	h, _, _ := net.SplitHostPort(d.Addr)
	return h
}

func (d *Datacenter) port() int {
	var p int
	_, ps, _ := net.SplitHostPort(d.Addr)
	fmt.Sscan(ps, &p)
	return p
}

// transfer waits for the ACK of the answered call, then refers the SBC to
// the script's number. Teams' Refer-To carries x-m (the target's MRI) and
// x-t (the tenant); the SBC must keep them in the new INVITE's Request-URI
// so that Teams can find the target.
func (d *Datacenter) transfer(inv *sip.Request, ok *sip.Response, s Script) {
	f := d.far
	ctx, cancel := context.WithTimeout(f.ctx, time.Minute)
	defer cancel()
	callID := inv.CallID().Value()
	if _, err := f.Wait(ctx, func(r Request) bool {
		return r.Req.Method == sip.ACK && r.Req.CallID().Value() == callID
	}); err != nil {
		f.log.Warn("teamsfar: no ACK; transfer not started", "call_id", callID)
		return
	}
	ref := d.buildRefer(inv, ok, s)
	tx, err := f.client.TransactionRequest(ctx, ref)
	status := 0
	if err == nil {
		select {
		case res := <-tx.Responses():
			for res != nil && res.StatusCode < 200 {
				res = <-tx.Responses()
			}
			if res != nil {
				status = res.StatusCode
			}
		case <-tx.Done():
		case <-ctx.Done():
		}
		tx.Terminate()
	}
	f.record(Request{DC: d.idx, Req: ref, Status: status})
}

// buildRefer is the REFER inside the dialog of inv (Teams is its UAS).
func (d *Datacenter) buildRefer(inv *sip.Request, ok *sip.Response, s Script) *sip.Request {
	target := inv.Contact().Address
	ref := sip.NewRequest(sip.REFER, *target.Clone())
	from := ok.To().Address
	fh := &sip.FromHeader{Address: from, Params: sip.NewParams()}
	tag, _ := ok.To().Params.Get("tag")
	fh.Params.Add("tag", tag)
	ref.AppendHeader(fh)
	th := &sip.ToHeader{Address: inv.From().Address, Params: inv.From().Params.Clone()}
	ref.AppendHeader(th)
	cid := sip.CallIDHeader(inv.CallID().Value())
	ref.AppendHeader(&cid)
	ref.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.REFER})
	mf := sip.MaxForwardsHeader(70)
	ref.AppendHeader(&mf)
	// UAS route set: the Record-Route of the INVITE, in order (RFC 3261 §12.1.1).
	for _, h := range inv.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			ref.AppendHeader(&sip.RouteHeader{Address: rr.Address})
		}
	}
	ref.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: d.Name, Port: d.port(), UriParams: sip.HeaderParams{{K: "transport", V: "tls"}}}})
	params := fmt.Sprintf(";user=phone;x-m=%s;x-t=%s", s.MRI, s.Tenant)
	host := s.ReferHost
	if host == "" {
		host = Names[0]
	}
	ref.AppendHeader(sip.NewHeader("Refer-To", fmt.Sprintf("<sip:%s@%s%s>", s.ReferTo, host, params)))
	ref.AppendHeader(sip.NewHeader("Referred-By", fmt.Sprintf("<sip:%s@%s%s>", inv.Recipient.User, Names[0], params)))
	ref.AppendHeader(sip.NewHeader("X-MS-TenantId", s.Tenant))
	ref.SetTransport("TLS")
	ref.SetDestination(d.far.opts.SBCAddr)
	ref.SetBody(nil)
	return ref
}

// answerSDP answers an offer with its first codec (and telephone-event
// when offered), keeping the offer's profile; an SRTP offer gets a fresh
// key of its first crypto suite ("Direct Routing - media": the SBC leg is
// SRTP with SDES).
func answerSDP(offer []byte, ip string) []byte {
	lines := strings.Split(strings.ReplaceAll(string(offer), "\r\n", "\n"), "\n")
	proto, pt, dtmf, suite := "RTP/AVP", "0", "", ""
	rtpmap := map[string]string{}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "m=audio "):
			f := strings.Fields(l)
			if len(f) >= 4 {
				proto, pt = f[2], f[3]
			}
		case strings.HasPrefix(l, "a=rtpmap:"):
			k, v, _ := strings.Cut(strings.TrimPrefix(l, "a=rtpmap:"), " ")
			rtpmap[k] = v
			if strings.HasPrefix(strings.ToLower(v), "telephone-event/8000") {
				dtmf = k
			}
		case strings.HasPrefix(l, "a=crypto:") && suite == "":
			if f := strings.Fields(l); len(f) >= 2 {
				suite = f[1]
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n", time.Now().Unix(), ip, ip)
	fmts := pt
	if dtmf != "" && dtmf != pt {
		fmts += " " + dtmf
	}
	fmt.Fprintf(&b, "m=audio %d %s %s\r\n", 49152+int(randByte())*2, proto, fmts)
	for _, p := range strings.Fields(fmts) {
		if v, ok := rtpmap[p]; ok {
			fmt.Fprintf(&b, "a=rtpmap:%s %s\r\n", p, v)
		}
	}
	if suite != "" {
		key := make([]byte, 30)
		_, _ = rand.Read(key)
		fmt.Fprintf(&b, "a=crypto:1 %s inline:%s\r\n", suite, base64.StdEncoding.EncodeToString(key))
	}
	b.WriteString("a=sendrecv\r\n")
	return []byte(b.String())
}

func newHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randByte() byte {
	var b [1]byte
	_, _ = rand.Read(b[:])
	return b[0]
}
