rule staircase_figure:
    """Loss (log scale) and last-layer eps-rank against step, every seed (claims A1, A2)."""
    input:
        notebook=notebook("staircase"),
        metrics=lambda w: run_files(w.experiment),
    output:
        png=report(
            "results/figures/staircase_{experiment}.png",
            caption="../report/staircase.rst",
            category="Staircase",
            subcategory="{experiment}",
        ),
        pdf="results/figures/staircase_{experiment}.pdf",
        notebook="results/notebooks/staircase_{experiment}.ipynb",
    log:
        "results/logs/notebooks/staircase_{experiment}.log",
    conda:
        ENV
    shell:
        "papermill {input.notebook} {output.notebook} -k python3 --cwd . "
        "-p experiment {wildcards.experiment} -p runs_dir results/runs/{wildcards.experiment} "
        "-p output_stem results/figures/staircase_{wildcards.experiment} > {log} 2>&1"


rule notebook_html:
    """A static HTML copy of an executed notebook, readable without Jupyter."""
    input:
        "results/notebooks/{name}.ipynb",
    output:
        "results/notebooks/{name}.html",
    log:
        "results/logs/notebooks/{name}.html.log",
    conda:
        ENV
    shell:
        "jupyter nbconvert --to html {input} --output-dir results/notebooks > {log} 2>&1"
