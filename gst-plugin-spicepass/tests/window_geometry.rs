// SPDX-License-Identifier: MPL-2.0
//! Window geometry (issue 8): the guest application calls `set_render_rectangle` on
//! `spicepasssink`; the client's `spicepasssrc` posts it and hands it to the downstream
//! `GstVideoOverlay` — a real `ximagesink` under Xvfb, and a second `spicepasssink` (an
//! overlay that forwards what it is given, so a third process can check the exact values).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A private headless X server on a free display, killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let free = (90..400).find(|n| {
            !PathBuf::from(format!("/tmp/.X{n}-lock")).exists()
                && !PathBuf::from(format!("/tmp/.X11-unix/X{n}")).exists()
        });
        let n = free.expect("a free X display number");
        let child = Command::new("Xvfb")
            .args([
                format!(":{n}").as_str(),
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "1024x768x24",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (./x setup installs it: tools/setup.d/20-xvfb.sh)");
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        let deadline = Instant::now() + LONG;
        while !socket.exists() {
            assert!(Instant::now() < deadline, "Xvfb :{n} did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const RECT: &str = "10,20,320,240";
const GEOMETRY: &str = "MSG spicepass-window-geometry, x=(int)10, y=(int)20, width=(uint)320, \
                        height=(uint)240, visible=(boolean)true;";

/// Mid-stream: the application places the video after the 5th buffer went out.
#[test]
fn ximagesink_under_xvfb_gets_the_guest_rectangle() {
    let x = Xvfb::start();
    let dir = TempDir::new("geometry-x");
    let clip = make_clip(&dir, 60);
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let head = play_clip(&clip);
    let render_rect = format!("render-rect={RECT}");
    let mut guest = Peer::spawn(
        "guest",
        &["guest", &uri, &head, &render_rect, "render-rect-after=5"],
    );
    guest.wait_line("READY", LONG);
    let mut client = Peer::spawn_with(
        "client",
        &["client", &uri, "video-sink=ximagesink sync=false"],
        |c| {
            c.env("DISPLAY", &x.display);
        },
    );
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    assert_eq!(guest.finish(LONG), 0, "guest failed\n{}", guest.story());
    guest.assert_no_panic();
    client.assert_no_panic();
    assert_eq!(
        guest.lines_with("RENDER-RECT-SET"),
        vec![format!("RENDER-RECT-SET {RECT} ok=true")]
    );
    assert_eq!(
        client.lines_with("MSG spicepass-window-geometry,"),
        vec![GEOMETRY.to_string()],
        "{}",
        client.story()
    );
    // ximagesink is the overlay found downstream through decodebin. GStreamer 1.22's
    // ximagesink does not implement set_render_rectangle, so it reports "not supported".
    let applied = client.lines_with("MSG spicepass-window-geometry-applied");
    assert_eq!(applied.len(), 1, "{}", client.story());
    assert!(
        applied[0].starts_with(
            "MSG spicepass-window-geometry-applied, sink=(string)out, x=(int)10, y=(int)20, \
             width=(int)320, height=(int)240, supported=(boolean)"
        ),
        "{}",
        applied[0]
    );
    assert_eq!(
        client.lines_with("BUF").len(),
        60,
        "every frame was rendered"
    );
}

/// Before any client: the geometry set while nobody listens is delivered on connection.
/// The client renders into another `spicepasssink` (a `GstVideoOverlay`), which forwards
/// the rectangle it was given to a third process: the exact values crossed the interface.
#[test]
fn rectangle_set_before_connecting_reaches_a_downstream_overlay() {
    let dir = TempDir::new("geometry-relay");
    let clip = make_clip(&dir, 30);
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let relay_uri = format!("spicepass+unix://{}", dir.path("relay.sock").display());
    let head = play_clip(&clip);
    let render_rect = format!("render-rect={RECT}");
    let mut guest = Peer::spawn("guest", &["guest", &uri, &head, &render_rect]);
    guest.wait_line("READY", LONG);
    let relay_sink = format!("video-sink=spicepasssink uri={relay_uri} drop-policy=block");
    let mut relay = Peer::spawn("relay", &["client", &uri, &relay_sink]);
    let mut viewer = Peer::spawn("viewer", &["client", &relay_uri]);
    assert_eq!(viewer.finish(LONG), 0, "viewer failed\n{}", viewer.story());
    assert_eq!(relay.finish(LONG), 0, "relay failed\n{}", relay.story());
    assert_eq!(guest.finish(LONG), 0, "guest failed\n{}", guest.story());
    for p in [&guest, &relay, &viewer] {
        p.assert_no_panic();
    }
    assert_eq!(
        relay.lines_with("MSG spicepass-window-geometry,"),
        vec![GEOMETRY.to_string()]
    );
    let applied = relay.lines_with("MSG spicepass-window-geometry-applied");
    assert_eq!(
        applied,
        vec![
            "MSG spicepass-window-geometry-applied, sink=(string)out, x=(int)10, y=(int)20, \
             width=(int)320, height=(int)240, supported=(boolean)true;"
                .to_string()
        ],
        "{}",
        relay.story()
    );
    // What the relay's overlay was given, as the third process received it.
    assert_eq!(
        viewer.lines_with("MSG spicepass-window-geometry,"),
        vec![GEOMETRY.to_string()],
        "{}",
        viewer.story()
    );
    assert_eq!(viewer.lines_with("BUF").len(), 30);
}
