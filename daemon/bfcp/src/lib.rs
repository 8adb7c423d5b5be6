//! BFCP, the Binary Floor Control Protocol (RFC 8855), for sharing content in SIP calls the
//! way room systems do: the content is a second video stream, and whoever sends it holds the
//! floor of that stream (RFC 8856 ties the floor to the stream in SDP with `a=floorid` and
//! `a=label`).
//!
//! # What is here
//!
//! - The codec: [`Message`] (common header of Ver 1 and Ver 2 with the R bit, every primitive
//!   of RFC 8855) and [`Attribute`] (every attribute of RFC 8855, grouped ones with their
//!   inner attributes; unknown ones kept with their M bit), encoded with padding and decoded
//!   within bounds ([`MAX_MESSAGE_LEN`], [`MAX_ATTRIBUTES`], [`MAX_NESTING`]). The decoder
//!   never panics; everything it refuses is a [`DecodeError`] that says what and where.
//!   [`message_length`] cuts messages from a stream.
//! - A floor participant ([`Participant`], RFC 8855 §9, §10, Hello and Goodbye of §12), for
//!   a far end that is the floor control server (`a=floorctrl:s-only`, or `c-s` where it
//!   takes that role): Hello, FloorQuery to follow the floor, FloorRequest and FloorRelease;
//!   the server's own FloorRequestStatus and FloorStatus are acknowledged over UDP.
//! - A small floor control server ([`FloorServer`], RFC 8855 §13) for a far end that is a
//!   participant only (`a=floorctrl:c-only`): one floor; the far end's requests are granted
//!   at once, and the room takes the floor from it, as "the last one to present takes the
//!   floor".
//! - Both run as a Tokio task over a [`Transport`]: UDP (Ver 2; retransmission of our
//!   requests after T1 = 500 ms, doubled each time, four transmissions in all; duplicate
//!   requests from the far end answered from a cache and not acted on twice), or any reliable
//!   byte stream (Ver 1; a `TcpStream`, or a TLS stream the caller layered on one). Both tell
//!   the room what happens as [`FloorEvent`]s, from the room's side, on a bounded channel (64
//!   events; a caller that does not read loses the newest, with a warning, rather than stall
//!   the session).
//!
//! # What is not
//!
//! - Fragmented messages (F bit, used over UDP only) are refused ([`DecodeError::Fragmented`]);
//!   floor control messages are far smaller than a datagram, and we send none.
//! - DTLS (`UDP/TLS/BFCP`) is not set up here; TLS over TCP is the caller's, through
//!   [`Transport::Tcp`].
//! - Chairs (ChairAction is refused with Error 5), queues and priorities: the server grants
//!   at once, the participant asks without a priority.
//! - SDP: the caller reads `a=confid`, `a=userid`, `a=floorid` and `a=floorctrl` and passes
//!   the IDs ([`FloorIds`], [`ServerIds`]).
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use roomd_bfcp::{FloorEvent, FloorIds, Participant, Timers, Transport};
//!
//! let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
//! let remote = "192.0.2.10:5070".parse()?;
//! let ids = FloorIds { conference_id: 1, user_id: 2, floor_id: 1 };
//! let (participant, mut events) =
//!     Participant::start(Transport::Udp { socket, remote }, ids, Timers::default());
//! participant.request_floor().await?;
//! while let Some(event) = events.recv().await {
//!     if event == FloorEvent::Granted {
//!         break; // send the content now
//!     }
//! }
//! participant.release_floor().await?;
//! # Ok(())
//! # }
//! ```

mod attribute;
mod error;
mod event;
mod floor;
mod message;
mod participant;
mod server;
mod transaction;
mod transport;

pub use attribute::{Attribute, ErrorCode, RequestStatus};
pub use error::{DecodeError, EncodeError, SessionError};
pub use event::{CloseReason, FloorEvent};
pub use message::{
    HEADER_LEN, Header, MAX_ATTRIBUTES, MAX_MESSAGE_LEN, MAX_NESTING, Message, Primitive, Version,
    message_length,
};
pub use participant::{FloorIds, Participant};
pub use server::{FloorServer, ServerIds};
pub use transaction::Timers;
pub use transport::{BfcpStream, Transport};
