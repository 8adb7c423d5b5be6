//! The GStreamer elements (filled in next).
