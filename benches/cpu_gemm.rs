//! The CPU baseline is fair: the tuned, threaded GEMM the probe uses against
//! the textbook triple loop and against itself on one thread, same shapes.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gpuprobe::cpu;
use gpuprobe::verify::Inputs;

fn gemm(c: &mut Criterion) {
    let threads = cpu::available_cpus();
    let mut group = c.benchmark_group("cpu_sgemm");
    group.sample_size(10);
    for n in [128u32, 256, 512] {
        let inputs = Inputs::generate(n, n, n, 1);
        let len = (n * n) as usize;
        let nn = n as usize;
        group.throughput(Throughput::Elements(2 * u64::from(n).pow(3)));
        group.bench_with_input(
            BenchmarkId::new(format!("tuned_{threads}_threads"), n),
            &n,
            |b, _| {
                let mut out = vec![0f32; len];
                b.iter(|| cpu::sgemm(nn, nn, nn, &inputs.a, &inputs.b, &mut out, threads));
            },
        );
        group.bench_with_input(BenchmarkId::new("tuned_1_thread", n), &n, |b, _| {
            let mut out = vec![0f32; len];
            b.iter(|| cpu::sgemm(nn, nn, nn, &inputs.a, &inputs.b, &mut out, 1));
        });
        if n <= 256 {
            group.bench_with_input(BenchmarkId::new("naive", n), &n, |b, _| {
                let mut out = vec![0f32; len];
                b.iter(|| cpu::naive_sgemm(nn, nn, nn, &inputs.a, &inputs.b, &mut out));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, gemm);
criterion_main!(benches);
