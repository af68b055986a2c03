//! The codec of the gRPC services: prost's, with 1 KiB buffers per call instead of 8 KiB.
//! Nacos messages are small, and a client's stream lives as long as its connection, so the
//! buffers of ten thousand idle connections are most of what they cost.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// The per-call buffer, grown in steps of this much for a larger message.
const BUFFER: usize = 1024;
/// A large encoded message yields to the runtime past this.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// Prost's codec with small buffers (the generated services use it).
#[derive(Debug, Clone)]
pub struct SmallCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallCodec<T, U> {
    fn default() -> Self {
        SmallCodec(PhantomData)
    }
}

impl<T, U> Codec for SmallCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::new(BUFFER, YIELD_THRESHOLD))
    }
}
