//! Indexing on the GPU: Gather (indices read on the host, checked there; also the `wick.split`
//! Gather over a table's parts) and Where (its
//! boolean condition, a host mask, uploaded as 0/1 by the kernel).

use candle_core::DType;
use wick_gpu::kernels::binary::MAX_RANK;
use wick_gpu::{Gpu, GpuTensor};

use super::super::{Arg, GpuKernel, Meta, Out, Place, Running};
use super::{device, host};
use crate::engine::ops::{axis, int_values, NodeCtx};

struct Gather {
    axis: i64,
}

impl GpuKernel for Gather {
    fn place(&self, input: usize) -> Place {
        Place::data_then_host(input)
    }

    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(x), Some(i)] if x.dims.len() + i.dims.len() <= MAX_RANK + 1 && !x.dims.is_empty())
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let (x, idx) = (device(xs, 0)?, host(xs, 1)?);
            let k = axis(self.axis, x.dims().len())?;
            Ok(vec![Out::Device(gpu.gather(x, &int_values(idx)?, idx.dims(), k).await?)])
        })
    }
}

pub fn gather(ctx: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Gather { axis: ctx.int("axis", 0) }))
}

/// `wick.split` Gather (engine/split.rs): indices first, then the parts of a table cut along
/// axis 0, each bound alone.
struct GatherParts;

impl GpuKernel for GatherParts {
    fn place(&self, input: usize) -> Place {
        Place::host_then_data(input)
    }

    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        match xs {
            [Some(i), parts @ ..] if !parts.is_empty() => parts.iter().all(|p| {
                matches!(p, Some(p) if !p.dims.is_empty() && p.dims.len() + i.dims.len() <= MAX_RANK + 1)
            }),
            _ => false,
        }
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let idx = host(xs, 0)?;
            let parts = (1..xs.len()).map(|i| device(xs, i)).collect::<Result<Vec<_>, _>>()?;
            Ok(vec![Out::Device(gpu.gather_parts(&parts, &int_values(idx)?, idx.dims(), 0).await?)])
        })
    }
}

pub fn gather_parts(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(GatherParts))
}

struct Where;

impl GpuKernel for Where {
    fn place(&self, input: usize) -> Place {
        Place::host_then_data(input)
    }

    fn accepts(&self, xs: &[Option<Meta>]) -> bool {
        matches!(xs, [Some(c), Some(x), Some(y)] if [c, x, y].iter().all(|m| m.dims.len() <= MAX_RANK))
    }

    fn run<'a>(&'a self, gpu: &'a Gpu, xs: &'a [Option<Arg<'a>>]) -> Running<'a> {
        Box::pin(async move {
            let c = host(xs, 0)?;
            let mask: Vec<f32> = c.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
            let cond = GpuTensor::upload(gpu, c.dims(), &mask).await?;
            Ok(vec![Out::Device(gpu.where_select(&cond, device(xs, 1)?, device(xs, 2)?).await?)])
        })
    }
}

pub fn where_op(_: &NodeCtx) -> Option<Box<dyn GpuKernel>> {
    Some(Box::new(Where))
}
