# Generic notebook rules, included last: by then every stage has registered its figures and tables,
# so each rule's {name} is constrained to its own registry.


# One process per notebook job (staircase.workflow.notebook_job): papermill executes the notebook
# into the log folder first (Snakemake deletes a failed job's outputs, and the partially executed
# copy is what shows the failing cell; on failure one line names that cell, In [n], the error and
# where the copy is), then the copy becomes the output and nbconvert writes the static HTML copy
# (readable without Jupyter) in the same process: a job of its own per HTML copy cost a Snakemake
# job and a process start-up each, and a second command in the job ~2 s of CPU (PERFORMANCE.md).
PAPERMILL = (
    "python -m staircase.workflow.notebook_job {input.notebook} {log.notebook} {output.notebook}"
    " {params.folder:q} --parameters {params.parameters:q} --log {log.stderr}"
)


rule figure:
    """Run a figure's papermill notebook: PNG and PDF from the tidy results."""
    input:
        notebook=lambda w: FIGURES[w.name]["notebook"],
        data=lambda w: FIGURES[w.name]["inputs"],
    output:
        png=report(
            res("figures/{name}.png"),
            caption="../report/caption.rst",
            category="Figures",
        ),
        pdf=res("figures/{name}.pdf"),
        notebook=res("notebooks/{name}.ipynb"),
        html=res("notebooks/{name}.html"),
    log:
        notebook=res("logs/notebooks/{name}.ipynb"),
        stderr=res("logs/notebooks/{name}.log"),
    wildcard_constraints:
        name=_one_of(FIGURES),
    conda:
        ENV
    params:
        parameters=lambda w: json.dumps(FIGURES[w.name]["parameters"]),
        caption=lambda w: FIGURES[w.name]["caption"],
        folder=lambda w, output: os.path.dirname(output.html),
    shell:
        PAPERMILL


rule table:
    """Run a table's papermill notebook: CSV, and a rendering as PNG and PDF."""
    input:
        notebook=lambda w: TABLES[w.name]["notebook"],
        data=lambda w: TABLES[w.name]["inputs"],
    output:
        csv=report(
            res("tables/{name}.csv"),
            caption="../report/caption.rst",
            category="Tables",
        ),
        png=res("tables/{name}.png"),
        pdf=res("tables/{name}.pdf"),
        notebook=res("notebooks/{name}.ipynb"),
        html=res("notebooks/{name}.html"),
    log:
        notebook=res("logs/notebooks/{name}.ipynb"),
        stderr=res("logs/notebooks/{name}.log"),
    wildcard_constraints:
        name=_one_of(TABLES),
    conda:
        ENV
    params:
        parameters=lambda w: json.dumps(TABLES[w.name]["parameters"]),
        caption=lambda w: TABLES[w.name]["caption"],
        folder=lambda w, output: os.path.dirname(output.html),
    shell:
        PAPERMILL


TARGETS.extend(job_outputs(rules.figure, name=list(FIGURES)))
TARGETS.extend(job_outputs(rules.table, name=list(TABLES)))
