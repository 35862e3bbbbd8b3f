// SPDX-License-Identifier: MPL-2.0
//! Writer and readers in separate processes, killed with SIGKILL.
//!
//! This test binary has its own `main`: run normally, it executes the
//! scenarios below; started with `SHMZERO_CORE_CHILD=<role>` it plays one
//! peer (reader, writer, or a listener that just holds the socket) and
//! reports on stdout, one line per event.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shmzero_core::{
    BufferDescriptor, BufferId, Channel, GoodbyeReason, Listener, MappedRange, Message, ReaderId,
    ReaderSegments, RendezvousError, SegmentId, SlotId, SlotTable, WriterSegment, connect,
    reader_handshake, writer_handshake,
};

const TIMEOUT: Duration = Duration::from_secs(30);
const ROLE_VAR: &str = "SHMZERO_CORE_CHILD";
const PATH_VAR: &str = "SHMZERO_CORE_SOCKET";
const HOLD_VAR: &str = "SHMZERO_CORE_HOLD";
const SLOT_SIZE: u64 = 1 << 20;

fn main() {
    if let Ok(role) = std::env::var(ROLE_VAR) {
        child_main(&role);
        return;
    }
    let scenarios: &[(&str, fn())] = &[
        ("zero_copy_across_processes", zero_copy_across_processes),
        (
            "killed_readers_release_everything",
            killed_readers_release_everything,
        ),
        (
            "killed_writer_socket_is_replaced",
            killed_writer_socket_is_replaced,
        ),
        (
            "reader_keeps_buffers_after_writer_death",
            reader_keeps_buffers_after_writer_death,
        ),
        (
            "default_path_falls_back_to_private_tmp_dir",
            default_path_falls_back_to_private_tmp_dir,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, scenario) in scenarios {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        print!("test {name} ... ");
        let _ = std::io::stdout().flush();
        match std::panic::catch_unwind(scenario) {
            Ok(()) => println!("ok"),
            Err(_) => {
                println!("FAILED");
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        println!(
            "test result: FAILED. {} passed; {} failed",
            ran - failed.len(),
            failed.len()
        );
        eprintln!("failed: {failed:?}");
        std::process::exit(1);
    }
    println!("test result: ok. {ran} passed; 0 failed");
}

// ---------------------------------------------------------------- children

fn child_main(role: &str) {
    let path = std::env::var_os(PATH_VAR).map(PathBuf::from);
    match role {
        "reader" => child_reader(&path.expect("socket path")),
        "writer" => child_writer(&path.expect("socket path")),
        "listen-only" => {
            let _listener = Listener::bind(&path.expect("socket path")).unwrap();
            println!("listening");
            std::thread::sleep(TIMEOUT * 4);
        }
        "print-default-path" => {
            let path = shmzero_core::default_socket_path("proc-test").unwrap();
            println!("{}", path.display());
        }
        other => panic!("unknown child role {other}"),
    }
}

/// Connects, maps segments, reports each buffer as
/// `buffer <id> <first byte> <last byte> <inside mapping>` and releases it
/// unless told to hold on to everything.
fn child_reader(path: &Path) {
    let hold = std::env::var_os(HOLD_VAR).is_some();
    let channel = connect(path, TIMEOUT).unwrap();
    reader_handshake(&channel, 2, TIMEOUT).unwrap();
    println!("connected");
    let mut segments = ReaderSegments::new();
    let mut held: Vec<MappedRange> = Vec::new();
    loop {
        let received = match channel.recv(TIMEOUT) {
            Ok(received) => received,
            Err(e) if e.is_disconnect() => break,
            Err(e) => panic!("reader: {e}"),
        };
        match received.message {
            Message::NewSegment(announced) => {
                segments.insert(announced, received.fd.unwrap()).unwrap();
            }
            Message::Buffer(desc) => {
                let range = segments.range(&desc).unwrap();
                let bytes = range.as_ref();
                let inside = segments
                    .get(desc.segment)
                    .unwrap()
                    .contains(range.as_ptr(), range.len());
                println!(
                    "buffer {} {} {} {}",
                    desc.buffer.0,
                    bytes[0],
                    bytes[bytes.len() - 1],
                    inside
                );
                if hold {
                    held.push(range);
                } else {
                    drop(range);
                    channel
                        .send(&Message::Release(desc.buffer), None, TIMEOUT)
                        .unwrap();
                }
            }
            Message::Goodbye(_) => break,
            other => panic!("reader: unexpected {other:?}"),
        }
    }
    println!("bye");
}

/// Serves one reader one buffer filled with 0x5a, then idles until killed.
fn child_writer(path: &Path) {
    let listener = Listener::bind(path).unwrap();
    println!("listening");
    let (channel, _) = listener.accept(TIMEOUT).unwrap().expect("a reader");
    writer_handshake(&channel, 4, TIMEOUT).unwrap();
    let segment = WriterSegment::create(SegmentId(0), SLOT_SIZE, "child-writer").unwrap();
    let mut slot = segment.claim(0, SLOT_SIZE).unwrap();
    slot.as_mut().fill(0x5a);
    channel
        .send(
            &Message::NewSegment(segment.announcement()),
            Some(segment.share_fd()),
            TIMEOUT,
        )
        .unwrap();
    channel
        .send(
            &Message::Buffer(descriptor(BufferId(0), SegmentId(0), 0, SLOT_SIZE)),
            None,
            TIMEOUT,
        )
        .unwrap();
    println!("sent");
    std::thread::sleep(TIMEOUT * 4);
}

// ------------------------------------------------------------------ helpers

struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Owns the stdout pipe until EOF; joined on kill so the fd is closed.
    stdout_thread: Option<std::thread::JoinHandle<()>>,
}

impl Peer {
    fn spawn(role: &str, path: &Path, envs: &[(&str, &str)]) -> Peer {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .env(ROLE_VAR, role)
            .env(PATH_VAR, path)
            .stdout(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        Self::start(command)
    }

    fn start(mut command: Command) -> Peer {
        let mut child = command.spawn().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout_thread = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
            lines,
            stdout_thread: Some(stdout_thread),
        }
    }

    fn expect_line(&self) -> String {
        self.lines
            .recv_timeout(TIMEOUT)
            .expect("child reported in time")
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        if let Some(thread) = self.stdout_thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn descriptor(buffer: BufferId, segment: SegmentId, offset: u64, size: u64) -> BufferDescriptor {
    BufferDescriptor {
        buffer,
        segment,
        offset,
        size,
        pts: Some(0),
        dts: None,
        duration: None,
        offset_start: None,
        offset_end: None,
        flags: 0,
        video: None,
    }
}

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shmzero-core-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The writer side of the tests: a listener, a slot table, one segment.
struct Writer {
    listener: Listener,
    table: SlotTable,
    segment: std::sync::Arc<WriterSegment>,
    slots: BTreeMap<SlotId, shmzero_core::SlotMemory>,
    readers: BTreeMap<ReaderId, Channel>,
}

impl Writer {
    fn new(path: &Path, n_slots: u32) -> Writer {
        let mut table = SlotTable::new();
        let layout = table.add_segment(SLOT_SIZE, n_slots, 4096).unwrap();
        let segment = WriterSegment::create(layout.id, layout.size, "test-writer").unwrap();
        let slots = (0..n_slots)
            .map(|index| {
                let id = SlotId {
                    segment: layout.id,
                    index,
                };
                let memory = segment.claim(layout.slot_offset(index), SLOT_SIZE).unwrap();
                (id, memory)
            })
            .collect();
        Writer {
            listener: Listener::bind(path).unwrap(),
            table,
            segment,
            slots,
            readers: BTreeMap::new(),
        }
    }

    fn accept_reader(&mut self) -> ReaderId {
        let (channel, creds) = self.listener.accept(TIMEOUT).unwrap().expect("a reader");
        assert_eq!(creds.uid, rustix::process::getuid().as_raw());
        let hello = writer_handshake(&channel, 2, TIMEOUT).unwrap();
        channel
            .send(
                &Message::NewSegment(self.segment.announcement()),
                Some(self.segment.share_fd()),
                TIMEOUT,
            )
            .unwrap();
        let id = self.table.add_reader(hello.credit);
        self.readers.insert(id, channel);
        id
    }

    /// Fills a free slot with `value` and offers it to every reader.
    fn publish(&mut self, value: u8) -> (SlotId, BufferId, Vec<ReaderId>) {
        let slot = self
            .table
            .alloc_in(self.segment.id())
            .unwrap()
            .expect("a free slot");
        self.slots.get_mut(&slot).unwrap().as_mut().fill(value);
        let (buffer, sent) = self.table.publish(slot, Instant::now()).unwrap();
        let layout = self.table.layout(slot.segment).unwrap();
        let desc = descriptor(
            buffer,
            slot.segment,
            layout.slot_offset(slot.index),
            SLOT_SIZE,
        );
        for reader in &sent {
            self.readers[reader]
                .try_send(&Message::Buffer(desc), None)
                .unwrap();
        }
        self.table.writer_release(slot).unwrap();
        (slot, buffer, sent)
    }

    /// Handles one message from `reader`; false once it is gone.
    fn service(&mut self, reader: ReaderId) -> bool {
        match self.readers[&reader].recv(TIMEOUT) {
            Ok(received) => {
                let Message::Release(buffer) = received.message else {
                    panic!("writer: unexpected {:?}", received.message)
                };
                self.table.release(reader, buffer).unwrap();
                true
            }
            Err(e) => {
                assert!(e.is_disconnect(), "writer: {e}");
                self.table.remove_reader(reader).unwrap();
                self.readers.remove(&reader);
                false
            }
        }
    }
}

// ---------------------------------------------------------------- scenarios

fn zero_copy_across_processes() {
    let dir = test_dir("zc");
    let path = dir.join("w.sock");
    let mut writer = Writer::new(&path, 4);
    let reader = Peer::spawn("reader", &path, &[]);
    let id = writer.accept_reader();
    assert_eq!(reader.expect_line(), "connected");
    for value in [0x11, 0x22, 0x33] {
        let (slot, buffer, sent) = writer.publish(value);
        assert_eq!(sent, vec![id]);
        assert_eq!(
            reader.expect_line(),
            format!("buffer {} {value} {value} true", buffer.0)
        );
        assert!(!writer.table.is_free(slot));
        assert!(writer.service(id));
        assert!(writer.table.is_free(slot), "released slot returns");
    }
    writer.readers[&id]
        .send(
            &Message::Goodbye(shmzero_core::Goodbye {
                reason: GoodbyeReason::Shutdown,
                message: "done".into(),
            }),
            None,
            TIMEOUT,
        )
        .unwrap();
    assert_eq!(reader.expect_line(), "bye");
    drop(writer);
    assert!(!path.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn killed_readers_release_everything() {
    let dir = test_dir("kill-readers");
    let path = dir.join("w.sock");
    let mut writer = Writer::new(&path, 6);
    // A healthy reader stays connected throughout.
    let healthy = Peer::spawn("reader", &path, &[]);
    let healthy_id = writer.accept_reader();
    assert_eq!(healthy.expect_line(), "connected");
    let baseline_fds = open_fds();
    for cycle in 0..10 {
        let stalled = Peer::spawn("reader", &path, &[(HOLD_VAR, "1")]);
        let stalled_id = writer.accept_reader();
        assert_eq!(stalled.expect_line(), "connected");
        // Three frames: the stalled reader (credit 2) takes two and loses
        // the third; the healthy one gets all three.
        for frame in 0..3 {
            let (_, _, sent) = writer.publish(frame);
            assert!(sent.contains(&healthy_id), "cycle {cycle} frame {frame}");
            assert_eq!(sent.contains(&stalled_id), frame < 2);
            healthy.expect_line();
            assert!(writer.service(healthy_id));
        }
        stalled.expect_line();
        stalled.expect_line();
        let stats = writer.table.reader_stats(stalled_id).unwrap();
        assert_eq!((stats.in_flight, stats.dropped), (2, 1));
        assert_eq!(writer.table.free_slots(writer.segment.id()), 4);
        stalled.kill();
        // Death is seen as a disconnect and drops both references at once.
        assert!(!writer.service(stalled_id));
        assert_eq!(writer.table.free_slots(writer.segment.id()), 6);
        writer.table.check_invariants().unwrap();
    }
    assert_eq!(open_fds(), baseline_fds, "fd leak over kill cycles");
    drop(writer);
    assert!(!path.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn killed_writer_socket_is_replaced() {
    let dir = test_dir("kill-writer");
    let path = dir.join("w.sock");
    for _ in 0..5 {
        let live = Peer::spawn("listen-only", &path, &[]);
        assert_eq!(live.expect_line(), "listening");
        let err = Listener::bind(&path).unwrap_err();
        assert!(matches!(err, RendezvousError::InUse(_)), "{err}");
        live.kill();
        // SIGKILL left the socket file behind...
        assert!(std::fs::metadata(&path).unwrap().file_type().is_socket());
        // ...and a new writer takes over the same path.
        let listener = Listener::bind(&path).unwrap();
        let _reader = connect(&path, TIMEOUT).unwrap();
        assert!(listener.accept(TIMEOUT).unwrap().is_some());
        drop(listener);
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(names.is_empty(), "left behind: {names:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn reader_keeps_buffers_after_writer_death() {
    let dir = test_dir("writer-death");
    let path = dir.join("w.sock");
    let writer = Peer::spawn("writer", &path, &[]);
    assert_eq!(writer.expect_line(), "listening");
    let channel = connect(&path, TIMEOUT).unwrap();
    reader_handshake(&channel, 4, TIMEOUT).unwrap();
    let mut segments = ReaderSegments::new();
    let first = channel.recv(TIMEOUT).unwrap();
    let Message::NewSegment(announced) = first.message else {
        panic!("expected a segment")
    };
    segments.insert(announced, first.fd.unwrap()).unwrap();
    let Message::Buffer(desc) = channel.recv(TIMEOUT).unwrap().message else {
        panic!("expected a buffer")
    };
    let range = segments.range(&desc).unwrap();
    assert_eq!(writer.expect_line(), "sent");
    writer.kill();
    let err = channel.recv(TIMEOUT).unwrap_err();
    assert!(err.is_disconnect(), "writer death is a disconnect: {err}");
    segments.clear();
    // The dead writer's memory is still mapped and intact here.
    assert!(range.as_ref().iter().all(|&b| b == 0x5a));
    // Its socket is stale: readers see "no writer", a new writer replaces it.
    assert!(connect(&path, TIMEOUT).unwrap_err().is_no_writer());
    drop(Listener::bind(&path).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn default_path_falls_back_to_private_tmp_dir() {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(ROLE_VAR, "print-default-path")
        .env_remove("XDG_RUNTIME_DIR")
        .stdout(Stdio::piped());
    let child = Peer::start(command);
    let path = PathBuf::from(child.expect_line());
    let uid = rustix::process::getuid().as_raw();
    let dir = PathBuf::from(format!("/tmp/shmzero-{uid}"));
    assert_eq!(path, dir.join("shmzero-proc-test.sock"));
    let meta = std::fs::symlink_metadata(&dir).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
}
