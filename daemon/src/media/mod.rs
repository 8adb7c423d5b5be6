//! The media engine: an adapter around the room core that turns its status into GStreamer
//! pipelines (camera, microphone, encoders, the room display) and reports back what it learns.

pub mod encoder_choice;

#[cfg(test)]
mod fake_encoders;
#[cfg(test)]
mod tests;
