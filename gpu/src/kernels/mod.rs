//! One compute pipeline per kernel, its WGSL beside it (`matmul.rs` + `matmul.wgsl`, …).
//! [`Kernels`] holds the pipelines, built once when the [`Gpu`](crate::Gpu) opens.

pub mod attention;
pub mod binary;
pub mod conv;
pub mod gather;
pub mod layout;
pub mod matmul;
pub mod matmul_nbits;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod resize;
pub mod select;
pub mod softmax;
pub mod unary;

use crate::GpuError;

pub(crate) struct Kernels {
    pub(crate) matmul: wgpu::ComputePipeline,
    pub(crate) matmul_blocked: wgpu::ComputePipeline,
    /// The MatMul pipelines on f16 operands (small, blocked), on a device with shader-f16.
    pub(crate) matmul_f16: Option<[wgpu::ComputePipeline; 2]>,
    pub(crate) binary: wgpu::ComputePipeline,
    pub(crate) unary: wgpu::ComputePipeline,
    pub(crate) softmax: wgpu::ComputePipeline,
    pub(crate) norm: wgpu::ComputePipeline,
    pub(crate) gather: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::ComputePipeline,
    pub(crate) reduce: wgpu::ComputePipeline,
    pub(crate) select: wgpu::ComputePipeline,
    pub(crate) conv: wgpu::ComputePipeline,
    pub(crate) conv_depthwise: wgpu::ComputePipeline,
    pub(crate) pool: wgpu::ComputePipeline,
    pub(crate) global_pool: wgpu::ComputePipeline,
    pub(crate) matmul_nbits: wgpu::ComputePipeline,
    pub(crate) matmul_nbits_gemv: wgpu::ComputePipeline,
    pub(crate) attention: wgpu::ComputePipeline,
    pub(crate) resize: wgpu::ComputePipeline,
}

impl Kernels {
    pub(crate) fn new(device: &wgpu::Device) -> Kernels {
        let f16 = device.features().contains(wgpu::Features::SHADER_F16);
        Kernels {
            matmul: pipeline(device, "matmul", &matmul::source(false)),
            matmul_blocked: pipeline(device, "matmul_blocked", &matmul::blocked_source(false)),
            matmul_f16: f16.then(|| {
                [
                    pipeline(device, "matmul_f16", &matmul::source(true)),
                    pipeline(device, "matmul_blocked_f16", &matmul::blocked_source(true)),
                ]
            }),
            binary: pipeline(device, "binary", &binary::source()),
            unary: pipeline(device, "unary", &unary::source()),
            softmax: pipeline(device, "softmax", &softmax::source()),
            norm: pipeline(device, "norm", &norm::source()),
            gather: pipeline(device, "gather", &gather::source()),
            layout: pipeline(device, "layout", &layout::source()),
            reduce: pipeline(device, "reduce", &reduce::source()),
            select: pipeline(device, "select", &select::source()),
            conv: pipeline(device, "conv", &conv::source()),
            conv_depthwise: pipeline(device, "conv_depthwise", &conv::depthwise_source()),
            pool: pipeline(device, "pool", &pool::source()),
            global_pool: pipeline(device, "global_pool", &pool::global_source()),
            matmul_nbits: pipeline(device, "matmul_nbits", &matmul_nbits::source()),
            matmul_nbits_gemv: pipeline(device, "matmul_nbits_gemv", &matmul_nbits::gemv_source()),
            attention: pipeline(device, "attention", &attention::source()),
            resize: pipeline(device, "resize", &resize::source()),
        }
    }
}

/// A pipeline with the layout wgpu derives from the shader (group 0 only).
fn pipeline(device: &wgpu::Device, label: &str, wgsl: &str) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(wgsl.into()),
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

/// One kernel call: binds `buffers` and then a uniform holding `params` to group 0 in that
/// order, and dispatches `workgroups`, inside the call's error scopes (reported by the next
/// [`Gpu::check`](crate::Gpu::check)).
pub(crate) fn launch<P: bytemuck::Pod>(
    gpu: &crate::Gpu,
    op: &'static str,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[&wgpu::Buffer],
    params: &P,
    workgroups: (u32, u32),
) -> Result<(), GpuError> {
    gpu.scoped(op, || {
        let params = uniform(gpu, params);
        let mut all = buffers.to_vec();
        all.push(&params);
        dispatch(gpu, op, pipeline, &all, workgroups);
    })
}

/// Binds `buffers` to group 0 in order and records one dispatch in the device's open encoder
/// (submitted at the next read-back or check: one submission for a run's kernels).
fn dispatch(
    gpu: &crate::Gpu,
    op: &'static str,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[&wgpu::Buffer],
    workgroups: (u32, u32),
) {
    let layout = pipeline.get_bind_group_layout(0);
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, buffer)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: buffer.as_entire_binding(),
        })
        .collect();
    let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &entries,
    });
    gpu.record(|encoder| {
        // Named, so that an error found when the batch is submitted says which kernel.
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(op),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(workgroups.0, workgroups.1, 1);
    });
}

/// Workgroup counts must fit the device's per-dimension limit.
pub(crate) fn check_groups(
    gpu: &crate::Gpu,
    op: &'static str,
    groups: u64,
) -> Result<u32, GpuError> {
    let limit = gpu.device.limits().max_compute_workgroups_per_dimension;
    if groups > u64::from(limit) {
        return Err(GpuError::TooLarge {
            op,
            workgroups: groups,
            limit,
        });
    }
    Ok(groups as u32)
}

/// A small uniform buffer holding `params`.
fn uniform<T: bytemuck::Pod>(gpu: &crate::Gpu, params: &T) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    gpu.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// `groups` workgroups as (x, y): x up to the per-dimension limit, the rest in rows of y. The
/// shader rebuilds the flat index as `x + y × (x groups)`.
pub(crate) fn spread(
    gpu: &crate::Gpu,
    op: &'static str,
    groups: u64,
) -> Result<(u32, u32), GpuError> {
    let limit = u64::from(gpu.device.limits().max_compute_workgroups_per_dimension);
    let x = check_groups(gpu, op, groups.min(limit))?;
    let y = check_groups(gpu, op, groups.div_ceil(limit.max(1)))?;
    Ok((x, y))
}

/// `x` as a u32 for a uniform, or a shape error naming `op`.
pub(crate) fn fit(op: &'static str, x: usize) -> Result<u32, GpuError> {
    u32::try_from(x).map_err(|_| GpuError::shape(op, format!("{x} is over u32")))
}

/// Row-major strides of `dims`.
pub(crate) fn contiguous_strides(dims: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * dims[d + 1];
    }
    strides
}
