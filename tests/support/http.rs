//! A small real HTTP/1.1 server on 127.0.0.1 for the image tests: serves
//! files from memory, honours `Range: bytes=N-`, and misbehaves on demand
//! (cut a body short, ignore Range, answer 416 or any status, ask to retry
//! later, stall, trickle, wait before answering).
//! One request per connection (`Connection: close`). Files are shared, not
//! copied, between requests, so a guest image of some 150 MB is fine.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How the server answers the next request for a path.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub enum Behaviour {
    /// Answer as a correct server does.
    Normal,
    /// Send the headers for the whole answer, then only this many body bytes.
    CutAfter(usize),
    /// Answer 200 with the whole file whatever Range asks.
    IgnoreRange,
    /// Answer 416 with `Content-Range: bytes */<len>`.
    RangeNotSatisfiable,
    /// Answer with this status and no body.
    Status(u16),
    /// Send the headers and a few bytes, then nothing for this long.
    Stall(Duration),
    /// Send the body in small pieces with pauses (to overlap transfers).
    Slow,
    /// Wait this long, then answer as a correct server does (to make two
    /// clients ask for one file at the same time).
    Delay(Duration),
    /// Send the body in 20 pieces spread evenly over this long.
    Trickle(Duration),
    /// Answer with this status, `Retry-After: <seconds>` and no body.
    RetryAfter(u16, u32),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Arc<Vec<u8>>>,
    behaviours: HashMap<String, VecDeque<Behaviour>>,
    log: Vec<Request>,
}

pub struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    max_active: Arc<AtomicUsize>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let max_active = Arc::new(AtomicUsize::new(0));
        let accept = {
            let (state, stop, active, max_active) = (
                state.clone(),
                stop.clone(),
                active.clone(),
                max_active.clone(),
            );
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (state, active, max_active) =
                        (state.clone(), active.clone(), max_active.clone());
                    thread::spawn(move || {
                        let _ = serve(stream, &state, &active, &max_active);
                    });
                }
            })
        };
        Self {
            port,
            state,
            stop,
            active,
            max_active,
            accept: Some(accept),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    pub fn put(&self, path: &str, bytes: impl Into<Vec<u8>>) {
        let path = format!("/{}", path.trim_start_matches('/'));
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path, Arc::new(bytes.into()));
    }

    /// Queues `behaviour` for the next request of `path`.
    pub fn behave(&self, path: &str, behaviour: Behaviour) {
        let path = format!("/{}", path.trim_start_matches('/'));
        self.state
            .lock()
            .unwrap()
            .behaviours
            .entry(path)
            .or_default()
            .push_back(behaviour);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn requests_for(&self, path: &str) -> Vec<Request> {
        let path = format!("/{}", path.trim_start_matches('/'));
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Most body transfers that were in flight at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_active.load(Ordering::SeqCst)
    }

    /// Stops accepting; later connections are refused.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let _ = &self.active;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(
    mut stream: TcpStream,
    state: &Mutex<State>,
    active: &AtomicUsize,
    max_active: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    let (file, behaviour) = {
        let mut state = state.lock().unwrap();
        state.log.push(Request {
            path: path.clone(),
            range: range.clone(),
        });
        let behaviour = state
            .behaviours
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Behaviour::Normal);
        (state.files.get(&path).cloned(), behaviour)
    };
    if let Behaviour::Delay(pause) = behaviour {
        thread::sleep(pause);
    }
    let Some(file) = file else {
        return respond(&mut stream, 404, &[], b"not found\n");
    };
    let len = file.len();
    let from = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match behaviour {
        Behaviour::Status(code) => return respond(&mut stream, code, &[], b""),
        Behaviour::RetryAfter(code, secs) => {
            let secs = secs.to_string();
            return respond(&mut stream, code, &[("Retry-After", &secs)], b"");
        }
        Behaviour::RangeNotSatisfiable => {
            let cr = format!("bytes */{len}");
            return respond(&mut stream, 416, &[("Content-Range", &cr)], b"");
        }
        _ => {}
    }
    let honour_range = !matches!(behaviour, Behaviour::IgnoreRange);
    let (status, body, content_range) = match from {
        Some(n) if honour_range && n >= len => {
            let cr = format!("bytes */{len}");
            return respond(&mut stream, 416, &[("Content-Range", &cr)], b"");
        }
        Some(n) if honour_range => (
            206,
            &file[n..],
            Some(format!("bytes {n}-{}/{len}", len - 1)),
        ),
        _ => (200, &file[..], None),
    };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\nAccept-Ranges: bytes\r\n",
        reason(status),
        body.len()
    );
    if let Some(cr) = content_range {
        head.push_str(&format!("Content-Range: {cr}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
    max_active.fetch_max(now, Ordering::SeqCst);
    let result = (|| {
        match behaviour {
            Behaviour::CutAfter(n) => {
                stream.write_all(&body[..n.min(body.len())])?;
                stream.flush()?;
                stream.shutdown(Shutdown::Both)?;
            }
            Behaviour::Stall(pause) => {
                stream.write_all(&body[..body.len().min(1024)])?;
                stream.flush()?;
                thread::sleep(pause);
            }
            Behaviour::Slow => {
                for chunk in body.chunks(128 * 1024) {
                    stream.write_all(chunk)?;
                    thread::sleep(Duration::from_millis(15));
                }
            }
            Behaviour::Trickle(over) => {
                for chunk in body.chunks(body.len().div_ceil(20).max(1)) {
                    stream.write_all(chunk)?;
                    stream.flush()?;
                    thread::sleep(over / 20);
                }
            }
            _ => stream.write_all(body)?,
        }
        Ok(())
    })();
    active.fetch_sub(1, Ordering::SeqCst);
    result
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
