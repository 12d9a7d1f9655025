//! The absolute floor: a blocking ping-pong over loopback in plain std
//! Rust, one call at a time: write a frame, read its echo, repeat. Same
//! 18-byte framing as [`super::raw`]; one thread per connection on the
//! server.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::ClientSpec;
use super::raw::{HEADER_LEN, complete_frame, put_frame};
use crate::alloc::AllocCounters;
use crate::child;
use crate::load::{self, ClientReport, Phase};

/// Starts the blocking server on 127.0.0.1 (an ephemeral port), in its own
/// threads.
pub fn serve() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("floor: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("floor: {e}"))?;
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            thread::spawn(move || {
                let _ = echo_connection(stream);
            });
        }
    });
    Ok(addr)
}

fn echo_connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut frame = vec![0; HEADER_LEN];
    loop {
        match stream.read_exact(&mut frame[..HEADER_LEN]) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            other => other?,
        }
        // Checks magic and size before anything is reserved.
        complete_frame(&frame[..HEADER_LEN])?;
        let body = u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]]) as usize;
        let len = HEADER_LEN + body;
        if frame.len() < len {
            frame.resize(len, 0);
        }
        stream.read_exact(&mut frame[HEADER_LEN..len])?;
        frame[4] = 2;
        stream.write_all(&frame[..len])?;
    }
}

fn phase(stream: &mut TcpStream, request: &[u8], window: Duration) -> io::Result<Phase> {
    let end = Instant::now() + window;
    let mut reply = vec![0; request.len()];
    let mut phase = Phase::new();
    let mut start = Instant::now();
    while start < end {
        stream.write_all(request)?;
        stream.read_exact(&mut reply[..HEADER_LEN])?;
        stream.read_exact(&mut reply[HEADER_LEN..])?;
        let done = Instant::now();
        phase.total += 1;
        if done <= end {
            phase.in_window += 1;
            load::record(&mut phase.hist, done - start);
        }
        start = done;
    }
    if reply[HEADER_LEN..] != request[HEADER_LEN..] {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad echo"));
    }
    Ok(phase)
}

/// The client's whole run: warm-up, `READY`, `GO`, window, `RESULT`.
pub fn client(spec: &ClientSpec, payload: Bytes) -> Result<(), String> {
    if spec.concurrency != 1 {
        return Err("the floor runs one call at a time".to_owned());
    }
    let failed = |e: io::Error| format!("floor: {e}");
    let mut stream = TcpStream::connect(spec.addr).map_err(failed)?;
    stream.set_nodelay(true).map_err(failed)?;
    let mut request = BytesMut::new();
    put_frame(&mut request, 1, 1, &payload);
    phase(&mut stream, &request, spec.timing.warmup).map_err(failed)?;
    child::say("READY");
    load::wait_for_go()?;
    let before = AllocCounters::now();
    let measured = phase(&mut stream, &request, spec.timing.window).map_err(failed)?;
    let alloc = AllocCounters::now().since(before);
    load::report(&ClientReport::new(&measured, spec.timing.window, alloc))
}
