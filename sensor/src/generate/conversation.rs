//! Conversation generators: complete, protocol-correct exchanges between two hosts.
//!
//! Each [`Conversation`] turns a small description (endpoints, link, round-trip time, what is
//! said) into time-stamped [`Frame`]s in both directions: TCP with a real three-way handshake,
//! correct sequence and acknowledgement numbers and a FIN/ACK close; a DNS query and response
//! carrying real DNS messages; ICMP or ICMPv6 echo requests and replies. IPv4 and IPv6 both
//! work. The shape (packet counts) is fixed by the description; the generator's random source
//! only picks values (initial sequence numbers, IP ids, identifiers, small timing jitter), so
//! a scenario's counts do not depend on its seed.

use std::net::IpAddr;

use etherparse::{
    IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv6Extensions, Ipv6FlowLabel, Ipv6Header,
    PacketBuilder, TcpHeader, TcpOptionElement,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::GenerateError;
use super::frame::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, FlowTuple, Frame, Link};
use super::timeline::BASE_TIME_S;

/// IP protocol number of TCP.
pub const IP_PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IP_PROTO_UDP: u8 = 17;
/// IP protocol number of ICMP.
pub const IP_PROTO_ICMP: u8 = 1;
/// IP protocol number of ICMPv6.
pub const IP_PROTO_ICMPV6: u8 = 58;

/// TCP window advertised by clients (unscaled).
const CLIENT_WINDOW: u16 = 64_240;
/// TCP window advertised by servers (unscaled).
const SERVER_WINDOW: u16 = 65_160;
/// Bytes of an echo payload, as `ping` sends by default.
const ECHO_PAYLOAD_LEN: usize = 56;
/// Bytes of the timestamp `ping` puts at the start of its payload (a 64-bit `struct timeval`).
const ECHO_TIMESTAMP_LEN: usize = 16;

/// One end of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Address.
    pub ip: IpAddr,
    /// Transport port (0 for ICMP).
    pub port: u16,
}

/// A frame and the time it is seen, in microseconds after the scenario's base time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedFrame {
    /// Offset from [`BASE_TIME_S`](super::timeline::BASE_TIME_S), in microseconds.
    pub time_us: u64,
    /// The frame.
    pub frame: Frame,
}

/// One request and the whole response to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Bytes the client sends.
    pub request: Vec<u8>,
    /// Bytes the server answers with.
    pub response: Vec<u8>,
}

/// A TCP connection seen from the client side: handshake, exchanges, FIN/ACK close.
///
/// Packets: SYN, SYN/ACK, ACK; per exchange the request segments, the response segments and
/// one cumulative client ACK; then FIN/ACK, FIN/ACK, ACK. Segments carry at most `mss` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSession {
    /// The side that opens.
    pub client: Endpoint,
    /// The side that listens.
    pub server: Endpoint,
    /// Link header of client-to-server frames (server frames swap the MACs).
    pub link: Link,
    /// Round-trip time seen from the capture point.
    pub rtt_us: u64,
    /// Maximum segment size both sides use.
    pub mss: u16,
    /// The exchanges, in order.
    pub exchanges: Vec<Exchange>,
}

/// A DNS query over UDP and its response with one answer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsExchange {
    /// The resolver's client.
    pub client: Endpoint,
    /// The resolver (port 53).
    pub server: Endpoint,
    /// Link header of client-to-server frames.
    pub link: Link,
    /// Round-trip time to the resolver.
    pub rtt_us: u64,
    /// Name asked for, dotted (`www.example.com`).
    pub query_name: String,
    /// The answer: an IPv4 address makes an A query, an IPv6 address an AAAA query.
    pub answer: IpAddr,
}

/// ICMP (IPv4) or ICMPv6 echo requests, each answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpEcho {
    /// The pinging host.
    pub client: IpAddr,
    /// The pinged host.
    pub server: IpAddr,
    /// Link header of client-to-server frames.
    pub link: Link,
    /// Round-trip time.
    pub rtt_us: u64,
    /// Number of requests (each gets a reply).
    pub count: u16,
    /// Time between requests.
    pub interval_us: u64,
}

/// An application's UDP datagrams with opaque payloads (a game, a voice or VPN client): each
/// client datagram is answered by one server datagram. Payload bytes and lengths are random;
/// the packet count is `2 * count`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpDatagrams {
    /// The side that sends first.
    pub client: Endpoint,
    /// The side that answers.
    pub server: Endpoint,
    /// Link header of client-to-server frames.
    pub link: Link,
    /// Round-trip time.
    pub rtt_us: u64,
    /// Number of client datagrams (each gets an answer).
    pub count: u16,
    /// Time between client datagrams.
    pub interval_us: u64,
    /// Fewest payload bytes of a datagram.
    pub min_payload: usize,
    /// Most payload bytes of a datagram.
    pub max_payload: usize,
}

/// Any conversation the generator can write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conversation {
    /// A TCP connection.
    Tcp(TcpSession),
    /// A DNS query and response.
    Dns(DnsExchange),
    /// Echo requests and replies.
    IcmpEcho(IcmpEcho),
    /// UDP datagrams with random payloads.
    Udp(UdpDatagrams),
}

impl Conversation {
    /// The frames of the conversation in time order, the first one at `start_us`.
    pub fn frames(
        &self,
        start_us: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<TimedFrame>, GenerateError> {
        match self {
            Conversation::Tcp(session) => session.frames(start_us, rng),
            Conversation::Dns(exchange) => exchange.frames(start_us, rng),
            Conversation::IcmpEcho(echo) => echo.frames(start_us, rng),
            Conversation::Udp(datagrams) => datagrams.frames(start_us, rng),
        }
    }
}

impl TcpSession {
    /// Number of packets [`TcpSession::frames`] produces from the client and from the server.
    pub fn packet_counts(&self) -> (u64, u64) {
        let segments = |len: usize| len.div_ceil(usize::from(self.mss.max(1))) as u64;
        let exchanges = self.exchanges.iter();
        let client = exchanges
            .clone()
            .map(|ex| segments(ex.request.len()) + 1)
            .sum::<u64>();
        let server = exchanges.map(|ex| segments(ex.response.len())).sum::<u64>();
        // SYN, ACK, FIN, last ACK / SYN-ACK, FIN.
        (client + 4, server + 2)
    }

    /// The frames of the connection, in time order.
    pub fn frames(
        &self,
        start_us: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<TimedFrame>, GenerateError> {
        let mss = usize::from(self.mss.max(1));
        let mut client = IpSender::new(self.client.ip, self.server.ip, 64, self.link.clone(), rng);
        let mut server =
            IpSender::new(self.server.ip, self.client.ip, 52, swapped(&self.link), rng);
        let mut client_seq: u32 = rng.random();
        let mut server_seq: u32 = rng.random();
        let mut frames = Vec::new();
        let mut now_us = start_us;

        let mss_option = [TcpOptionElement::MaximumSegmentSize(self.mss)];
        let mut syn = self.tcp_header(true, client_seq, CLIENT_WINDOW);
        syn.syn = true;
        set_tcp_options(&mut syn, &mss_option)?;
        frames.push(client.tcp(now_us, syn, &[])?);
        client_seq = client_seq.wrapping_add(1);

        now_us += self.rtt_us;
        let mut syn_ack = self.tcp_header(false, server_seq, SERVER_WINDOW);
        syn_ack.syn = true;
        set_ack(&mut syn_ack, client_seq);
        set_tcp_options(&mut syn_ack, &mss_option)?;
        frames.push(server.tcp(now_us, syn_ack, &[])?);
        server_seq = server_seq.wrapping_add(1);

        now_us += rng.random_range(20..=120);
        let mut ack = self.tcp_header(true, client_seq, CLIENT_WINDOW);
        set_ack(&mut ack, server_seq);
        frames.push(client.tcp(now_us, ack, &[])?);

        for exchange in &self.exchanges {
            now_us += rng.random_range(200..=3_000);
            for (segment_idx, segment) in exchange.request.chunks(mss).enumerate() {
                if segment_idx > 0 {
                    now_us += rng.random_range(5..=30);
                }
                let mut data = self.tcp_header(true, client_seq, CLIENT_WINDOW);
                set_ack(&mut data, server_seq);
                data.psh = true;
                frames.push(client.tcp(now_us, data, segment)?);
                client_seq = client_seq.wrapping_add(segment_len(segment)?);
            }
            now_us += self.rtt_us + rng.random_range(100..=1_500);
            let segment_count = exchange.response.len().div_ceil(mss);
            for (segment_idx, segment) in exchange.response.chunks(mss).enumerate() {
                if segment_idx > 0 {
                    now_us += rng.random_range(15..=80);
                }
                let mut data = self.tcp_header(false, server_seq, SERVER_WINDOW);
                set_ack(&mut data, client_seq);
                data.psh = segment_idx + 1 == segment_count;
                frames.push(server.tcp(now_us, data, segment)?);
                server_seq = server_seq.wrapping_add(segment_len(segment)?);
            }
            now_us += rng.random_range(20..=120);
            let mut ack = self.tcp_header(true, client_seq, CLIENT_WINDOW);
            set_ack(&mut ack, server_seq);
            frames.push(client.tcp(now_us, ack, &[])?);
        }

        now_us += rng.random_range(2_000..=20_000);
        let mut fin = self.tcp_header(true, client_seq, CLIENT_WINDOW);
        fin.fin = true;
        set_ack(&mut fin, server_seq);
        frames.push(client.tcp(now_us, fin, &[])?);
        client_seq = client_seq.wrapping_add(1);

        now_us += self.rtt_us;
        let mut fin_ack = self.tcp_header(false, server_seq, SERVER_WINDOW);
        fin_ack.fin = true;
        set_ack(&mut fin_ack, client_seq);
        frames.push(server.tcp(now_us, fin_ack, &[])?);
        server_seq = server_seq.wrapping_add(1);

        now_us += rng.random_range(20..=120);
        let mut last_ack = self.tcp_header(true, client_seq, CLIENT_WINDOW);
        set_ack(&mut last_ack, server_seq);
        frames.push(client.tcp(now_us, last_ack, &[])?);
        Ok(frames)
    }

    fn tcp_header(&self, from_client: bool, seq: u32, window: u16) -> TcpHeader {
        let (src, dst) = if from_client {
            (self.client.port, self.server.port)
        } else {
            (self.server.port, self.client.port)
        };
        TcpHeader::new(src, dst, seq, window)
    }
}

impl DnsExchange {
    /// The query and the response.
    pub fn frames(
        &self,
        start_us: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<TimedFrame>, GenerateError> {
        let mut client = IpSender::new(self.client.ip, self.server.ip, 64, self.link.clone(), rng);
        let mut server =
            IpSender::new(self.server.ip, self.client.ip, 64, swapped(&self.link), rng);
        let transaction_id: u16 = rng.random();
        let query = dns_message(transaction_id, &self.query_name, None)?;
        let response = dns_message(transaction_id, &self.query_name, Some(self.answer))?;
        let reply_us = start_us + self.rtt_us + rng.random_range(0..=200);
        Ok(vec![
            client.udp(start_us, self.client.port, self.server.port, &query)?,
            server.udp(reply_us, self.server.port, self.client.port, &response)?,
        ])
    }
}

impl IcmpEcho {
    /// The requests and replies, each reply one round trip after its request.
    pub fn frames(
        &self,
        start_us: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<TimedFrame>, GenerateError> {
        let mut client = IpSender::new(self.client, self.server, 64, self.link.clone(), rng);
        let mut server = IpSender::new(self.server, self.client, 58, swapped(&self.link), rng);
        let echo_id: u16 = rng.random();
        let mut frames = Vec::new();
        for seq in 1..=self.count {
            let request_us = start_us + u64::from(seq - 1) * self.interval_us;
            let payload = echo_payload(request_us);
            frames.push(client.echo(request_us, true, echo_id, seq, &payload)?);
            let reply_us = request_us + self.rtt_us + rng.random_range(0..=150);
            frames.push(server.echo(reply_us, false, echo_id, seq, &payload)?);
        }
        Ok(frames)
    }
}

impl UdpDatagrams {
    /// Each client datagram and, one round trip later, its answer.
    pub fn frames(
        &self,
        start_us: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<TimedFrame>, GenerateError> {
        if self.min_payload > self.max_payload {
            return Err(GenerateError::build(
                "UDP datagrams",
                "the fewest payload bytes exceed the most",
            ));
        }
        let mut client = IpSender::new(self.client.ip, self.server.ip, 64, self.link.clone(), rng);
        let mut server =
            IpSender::new(self.server.ip, self.client.ip, 57, swapped(&self.link), rng);
        let mut frames = Vec::with_capacity(2 * usize::from(self.count));
        for datagram_idx in 0..u64::from(self.count) {
            let sent_us = start_us + datagram_idx * self.interval_us;
            let request = random_bytes(rng, self.min_payload, self.max_payload);
            frames.push(client.udp(sent_us, self.client.port, self.server.port, &request)?);
            let answer_us = sent_us + self.rtt_us + rng.random_range(0..=300);
            let answer = random_bytes(rng, self.min_payload, self.max_payload);
            frames.push(server.udp(answer_us, self.server.port, self.client.port, &answer)?);
        }
        frames.sort_by_key(|frame| frame.time_us);
        Ok(frames)
    }
}

/// Random bytes, between `min_len` and `max_len` of them.
fn random_bytes(rng: &mut ChaCha8Rng, min_len: usize, max_len: usize) -> Vec<u8> {
    let len = rng.random_range(min_len..=max_len);
    (0..len).map(|_| rng.random::<u8>()).collect()
}

/// One direction of a conversation: the addresses, the IP id counter and the link header.
struct IpSender {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    next_ip_id: u16,
    flow_label: u32,
    link: Link,
}

impl IpSender {
    fn new(src: IpAddr, dst: IpAddr, ttl: u8, link: Link, rng: &mut ChaCha8Rng) -> Self {
        IpSender {
            src,
            dst,
            ttl,
            next_ip_id: rng.random(),
            flow_label: rng.random_range(0..=0x000F_FFFF),
            link,
        }
    }

    /// Fresh IP headers for the next packet (lengths and protocol are set by the builder).
    fn ip_headers(&mut self) -> Result<IpHeaders, GenerateError> {
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut header =
                    Ipv4Header::new(0, self.ttl, IpNumber::TCP, src.octets(), dst.octets())
                        .map_err(|err| GenerateError::build("IPv4 header", err))?;
                header.identification = self.next_ip_id;
                self.next_ip_id = self.next_ip_id.wrapping_add(1);
                Ok(IpHeaders::Ipv4(header, Ipv4Extensions::default()))
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let flow_label = Ipv6FlowLabel::try_new(self.flow_label)
                    .map_err(|err| GenerateError::build("IPv6 flow label", err))?;
                let header = Ipv6Header {
                    traffic_class: 0,
                    flow_label,
                    payload_length: 0,
                    next_header: IpNumber::TCP,
                    hop_limit: self.ttl,
                    source: src.octets(),
                    destination: dst.octets(),
                };
                Ok(IpHeaders::Ipv6(header, Ipv6Extensions::default()))
            }
            _ => Err(GenerateError::build(
                "IP header",
                "source and destination are of different address families",
            )),
        }
    }

    fn ether_type(&self) -> u16 {
        if self.src.is_ipv4() {
            ETHERTYPE_IPV4
        } else {
            ETHERTYPE_IPV6
        }
    }

    fn timed_frame(&self, time_us: u64, network_bytes: Vec<u8>, flow: FlowTuple) -> TimedFrame {
        TimedFrame {
            time_us,
            frame: Frame {
                link: self.link.clone(),
                ether_type: self.ether_type(),
                network_bytes,
                flow,
            },
        }
    }

    fn tcp(
        &mut self,
        time_us: u64,
        header: TcpHeader,
        payload: &[u8],
    ) -> Result<TimedFrame, GenerateError> {
        let flow = FlowTuple {
            src_ip: self.src,
            dst_ip: self.dst,
            src_port: header.source_port,
            dst_port: header.destination_port,
            ip_proto: IP_PROTO_TCP,
        };
        let builder = PacketBuilder::ip(self.ip_headers()?).tcp_header(header);
        let mut bytes = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut bytes, payload)
            .map_err(|err| GenerateError::build("TCP segment", err))?;
        Ok(self.timed_frame(time_us, bytes, flow))
    }

    fn udp(
        &mut self,
        time_us: u64,
        src_port: u16,
        dst_port: u16,
        payload: &[u8],
    ) -> Result<TimedFrame, GenerateError> {
        let flow = FlowTuple {
            src_ip: self.src,
            dst_ip: self.dst,
            src_port,
            dst_port,
            ip_proto: IP_PROTO_UDP,
        };
        let builder = PacketBuilder::ip(self.ip_headers()?).udp(src_port, dst_port);
        let mut bytes = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut bytes, payload)
            .map_err(|err| GenerateError::build("UDP datagram", err))?;
        Ok(self.timed_frame(time_us, bytes, flow))
    }

    fn echo(
        &mut self,
        time_us: u64,
        is_request: bool,
        echo_id: u16,
        seq: u16,
        payload: &[u8],
    ) -> Result<TimedFrame, GenerateError> {
        let ip_proto = if self.src.is_ipv4() {
            IP_PROTO_ICMP
        } else {
            IP_PROTO_ICMPV6
        };
        let flow = FlowTuple {
            src_ip: self.src,
            dst_ip: self.dst,
            src_port: echo_id,
            dst_port: echo_id,
            ip_proto,
        };
        let ip = PacketBuilder::ip(self.ip_headers()?);
        let mut bytes = Vec::with_capacity(64 + payload.len());
        let written = match (self.src.is_ipv4(), is_request) {
            (true, true) => ip
                .icmpv4_echo_request(echo_id, seq)
                .write(&mut bytes, payload),
            (true, false) => ip
                .icmpv4_echo_reply(echo_id, seq)
                .write(&mut bytes, payload),
            (false, true) => ip
                .icmpv6_echo_request(echo_id, seq)
                .write(&mut bytes, payload),
            (false, false) => ip
                .icmpv6_echo_reply(echo_id, seq)
                .write(&mut bytes, payload),
        };
        written.map_err(|err| GenerateError::build("ICMP echo", err))?;
        Ok(self.timed_frame(time_us, bytes, flow))
    }
}

/// The link header of the reverse direction: same tags, MACs swapped.
pub fn swapped(link: &Link) -> Link {
    Link {
        src_mac: link.dst_mac,
        dst_mac: link.src_mac,
        tags: link.tags.clone(),
    }
}

/// A DNS message with one question; with `answer`, a response (RD, RA) with one answer record
/// pointing back at the question name, otherwise a recursive query.
pub fn dns_message(
    transaction_id: u16,
    query_name: &str,
    answer: Option<IpAddr>,
) -> Result<Vec<u8>, GenerateError> {
    const FLAGS_QUERY_RD: u16 = 0x0100;
    const FLAGS_RESPONSE_RD_RA: u16 = 0x8180;
    const TYPE_A: u16 = 1;
    const TYPE_AAAA: u16 = 28;
    const CLASS_IN: u16 = 1;
    const NAME_POINTER_TO_QUESTION: u16 = 0xC00C;
    const ANSWER_TTL_S: u32 = 300;

    let query_type = match answer {
        Some(IpAddr::V6(_)) => TYPE_AAAA,
        _ => TYPE_A,
    };
    let mut message = Vec::with_capacity(64);
    message.extend_from_slice(&transaction_id.to_be_bytes());
    let flags = if answer.is_some() {
        FLAGS_RESPONSE_RD_RA
    } else {
        FLAGS_QUERY_RD
    };
    message.extend_from_slice(&flags.to_be_bytes());
    let answer_count: u16 = if answer.is_some() { 1 } else { 0 };
    for count in [1, answer_count, 0, 0] {
        message.extend_from_slice(&count.to_be_bytes());
    }
    for label in query_name.split('.') {
        let label_len = u8::try_from(label.len())
            .ok()
            .filter(|len| (1..=63).contains(len))
            .ok_or_else(|| GenerateError::build("DNS name", "label must be 1 to 63 bytes"))?;
        message.push(label_len);
        message.extend_from_slice(label.as_bytes());
    }
    message.push(0);
    message.extend_from_slice(&query_type.to_be_bytes());
    message.extend_from_slice(&CLASS_IN.to_be_bytes());
    if let Some(address) = answer {
        message.extend_from_slice(&NAME_POINTER_TO_QUESTION.to_be_bytes());
        message.extend_from_slice(&query_type.to_be_bytes());
        message.extend_from_slice(&CLASS_IN.to_be_bytes());
        message.extend_from_slice(&ANSWER_TTL_S.to_be_bytes());
        match address {
            IpAddr::V4(v4) => {
                message.extend_from_slice(&4u16.to_be_bytes());
                message.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                message.extend_from_slice(&16u16.to_be_bytes());
                message.extend_from_slice(&v6.octets());
            }
        }
    }
    Ok(message)
}

/// An HTTP/1.1 GET and a `200 OK` with a `body_len`-byte text body. Random parts have a fixed
/// width, so the byte counts (and so the segment counts) depend only on the arguments.
pub fn http_exchange(rng: &mut ChaCha8Rng, host: &str, body_len: usize) -> Exchange {
    const PATH_TOKEN_LEN: usize = 12;
    let path_token = random_text(rng, PATH_TOKEN_LEN, b"0123456789abcdef");
    let request = format!(
        "GET /api/v1/objects/{path_token} HTTP/1.1\r\nHost: {host}\r\n\
         User-Agent: mirrorwatch-generate/1\r\nAccept: */*\r\n\r\n"
    );
    let mut body = random_text(rng, body_len, b"abcdefghijklmnopqrstuvwxyz0123456789 ");
    if body_len > 0 {
        body.replace_range(body_len - 1.., "\n");
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n\
         Cache-Control: no-store\r\n\r\n{body}"
    );
    Exchange {
        request: request.into_bytes(),
        response: response.into_bytes(),
    }
}

/// `len` characters drawn from `alphabet` (which must be ASCII).
fn random_text(rng: &mut ChaCha8Rng, len: usize, alphabet: &[u8]) -> String {
    if alphabet.is_empty() {
        return String::new();
    }
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// The payload Linux `ping` sends: a 64-bit `struct timeval` (little-endian), then byte `i`
/// holding `i`.
fn echo_payload(time_us: u64) -> Vec<u8> {
    let seconds = BASE_TIME_S + time_us / 1_000_000;
    let micros = time_us % 1_000_000;
    let mut payload = Vec::with_capacity(ECHO_PAYLOAD_LEN);
    payload.extend_from_slice(&seconds.to_le_bytes());
    payload.extend_from_slice(&micros.to_le_bytes());
    payload.extend((ECHO_TIMESTAMP_LEN..ECHO_PAYLOAD_LEN).map(|byte_idx| byte_idx as u8));
    payload
}

fn set_ack(header: &mut TcpHeader, acknowledgment_number: u32) {
    header.ack = true;
    header.acknowledgment_number = acknowledgment_number;
}

fn set_tcp_options(
    header: &mut TcpHeader,
    options: &[TcpOptionElement],
) -> Result<(), GenerateError> {
    header
        .set_options(options)
        .map_err(|err| GenerateError::build("TCP options", err))
}

fn segment_len(segment: &[u8]) -> Result<u32, GenerateError> {
    u32::try_from(segment.len()).map_err(|err| GenerateError::build("TCP segment", err))
}
