"""A HELD-OUT corpus of v0 Colab notebooks, written independently of the converter and of its tuning corpus.

Same data format and labelling rules as tests/notebook_corpus.py (see its docstring): every classifiable
line is `setup` (runs at build time, leaves v1; also in v1 when listed in `kept_setup`), `user` (needs the
person: uploads, mounts, tokens, their own media) or `kept` (everything else).

The cases cover domains the tuning corpus does not: Spark on Java, Kaggle downloads, the TensorFlow
Object Detection API (protoc), Whisper/WhisperX transcription, spaCy/NLTK data, a Stable Diffusion web UI,
ngrok tunnels, JAX + wandb, R through rpy2, Julia, LaTeX for matplotlib, GDAL, Selenium with chromium,
and a requirements file written by `%%writefile`. Patterns were studied from public notebooks and setup
scripts; no cell is copied from them.

Label choices made where real notebooks leave it open (consistent with the tuning corpus's conventions):
  * `os.environ[...] = ...`, `findspark.init()`, `sys.path.insert(...)`, `%load_ext` after installs only
    configure the kernel for the research: kept
  * `%env VAR=...` before a build that needs it: setup + kept_setup (the corpus convention)
  * a `%%capture` or `%%writefile requirements.txt` cell that only installs is setup as a whole; a
    `%%time`, `%%R` or `%%writefile script.jl` cell that runs or writes research is kept as a whole
  * `nltk.download(...)`, `python -m spacy download`, a model-zoo tarball, a checkpoint chosen by a form
    whose default is a public model, `launch.py --exit` (installs the web UI's requirements, then exits): setup
  * `!rm -rf sample_data` tidies the runtime before anything else: setup
  * model loading (`whisper.load_model`, `tf.saved_model.load`) and launching a server/tunnel are kept
  * anything that reads a credential, an upload, a Drive path or a user-chosen media URL is user,
    and so is `files.download` (it needs the person's browser)
"""

from __future__ import annotations

from tests.notebook_corpus import Case, Markdown, _code

HOLDOUT: tuple[Case, ...] = (
    Case(
        name="pyspark_openjdk_findspark",
        cells=(
            Markdown("# Word counts with Spark\nInstalls Java and a local Spark, then runs a small aggregation."),
            _code("""
                !apt-get update -qq > /dev/null
                !apt-get install -y -qq openjdk-17-jdk-headless > /dev/null
                SPARK = "spark-3.5.3-bin-hadoop3"
                !wget -nc -q https://archive.apache.org/dist/spark/spark-3.5.3/{SPARK}.tgz
                !tar xf {SPARK}.tgz
                !pip install -q findspark==2.0.1 pyspark==3.5.3
            """),
            _code("""
                import os
                os.environ["JAVA_HOME"] = "/usr/lib/jvm/java-17-openjdk-amd64"
                os.environ["SPARK_HOME"] = f"/content/{SPARK}"
                import findspark
                findspark.init()
                !java -version
            """),
            _code("""
                from pyspark.sql import SparkSession, functions as F
                spark = SparkSession.builder.master("local[*]").appName("colab-wc").getOrCreate()
                lines = spark.createDataFrame([("to be or not to be",), ("that is the question",)], ["line"])
                words = lines.select(F.explode(F.split("line", " ")).alias("word"))
                words.groupBy("word").count().orderBy(F.desc("count")).show()
                print(spark.version)
            """),
        ),
        setup=(
            "!apt-get update -qq > /dev/null",
            "!apt-get install -y -qq openjdk-17",
            "!wget -nc -q https://archive.apache.org",
            "!tar xf {SPARK}.tgz",
            "!pip install -q findspark",
        ),
        patterns=("apt-get install", "curl + tar", "{expr}", "inspection", "imports of installed", "plots/prints"),
    ),
    Case(
        name="kaggle_json_upload_dataset",
        cells=(
            Markdown("Upload your `kaggle.json` (Kaggle > Settings > Create New Token), then fetch the data."),
            _code("""
                !rm -rf sample_data
                !pip install -q kaggle==1.6.17
                from google.colab import files
                files.upload()  # pick kaggle.json
            """),
            _code("""
                !mkdir -p ~/.kaggle && mv kaggle.json ~/.kaggle/ && chmod 600 ~/.kaggle/kaggle.json
                dataset = "uciml/iris" #@param {type:"string"}
                !kaggle datasets download -d $dataset -p data --unzip -q
                !ls -lh data
            """),
            _code("""
                import pandas as pd
                import matplotlib.pyplot as plt
                df = pd.read_csv("data/Iris.csv")
                print(df.groupby("Species").mean(numeric_only=True))
                df.plot.scatter(x="SepalLengthCm", y="PetalLengthCm", c=df["Species"].astype("category").cat.codes, cmap="viridis")
                plt.show()
            """),
        ),
        setup=("!rm -rf sample_data", "!pip install -q kaggle"),
        user=("files.upload()", "!mkdir -p ~/.kaggle", "!kaggle datasets download"),
        runnable=True,
        patterns=("files.upload", "$var", "inspection", "plots/prints"),
    ),
    Case(
        name="tf_object_detection_protoc",
        cells=(
            _code("""
                #@title Install the Object Detection API
                import os
                !apt-get -qq install -y protobuf-compiler > /dev/null
                !test -d models || git clone -q --depth 1 https://github.com/tensorflow/models
            """),
            _code("""
                # compile the protos, then install the package from the research folder
                %%bash
                cd models/research
                protoc object_detection/protos/*.proto --python_out=.
                cp object_detection/packages/tf2/setup.py .
                python -m pip install -q . > /dev/null
            """),
            _code("""
                !python models/research/object_detection/builders/model_builder_tf2_test.py 2>&1 | tail -n 3
            """),
            _code("""
                MODEL = "ssd_mobilenet_v2_320x320_coco17_tpu-8"
                MODEL_DATE = "20200711"
                !wget -nc -q http://download.tensorflow.org/models/object_detection/tf2/{MODEL_DATE}/{MODEL}.tar.gz
                !tar -xzf {MODEL}.tar.gz
                PATH_TO_SAVED_MODEL = os.path.join(MODEL, "saved_model")
            """),
            _code("""
                #@title Your photo
                image_url = "https://example.org/street.jpg" #@param {type:"string"}
                !wget -q -O photo.jpg "$image_url"
            """),
            _code("""
                import numpy as np
                import tensorflow as tf
                from PIL import Image
                from object_detection.utils import label_map_util, visualization_utils as viz
                detect_fn = tf.saved_model.load(PATH_TO_SAVED_MODEL)
                labels = label_map_util.create_category_index_from_labelmap(
                    "models/research/object_detection/data/mscoco_label_map.pbtxt", use_display_name=True)
                image = np.array(Image.open("photo.jpg").convert("RGB"))
                det = detect_fn(tf.convert_to_tensor(image)[tf.newaxis, ...])
                viz.visualize_boxes_and_labels_on_image_array(
                    image, det["detection_boxes"][0].numpy(), det["detection_classes"][0].numpy().astype(np.int64),
                    det["detection_scores"][0].numpy(), labels, use_normalized_coordinates=True, min_score_thresh=0.4)
                Image.fromarray(image)
            """),
        ),
        setup=(
            "!apt-get -qq install -y protobuf-compiler",
            "!test -d models || git clone",
            "%%bash",
            "cd models/research",
            "protoc object_detection/protos",
            "cp object_detection/packages/tf2/setup.py",
            "python -m pip install -q .",
            "!wget -nc -q http://download.tensorflow.org",
            "!tar -xzf {MODEL}.tar.gz",
        ),
        user=('!wget -q -O photo.jpg "$image_url"',),
        patterns=(
            "comment before cell magic", "%%bash", "apt-get install", "curl + tar", "{expr}",
            "user media from form URL", "$var", "run a tool", "model loading",
        ),
    ),
    Case(
        name="whisper_capture_upload",
        cells=(
            _code("""
                !nvidia-smi -L
            """),
            _code("""
                %%capture
                !apt-get -qq update && apt-get -qq install -y ffmpeg
                !pip install -U -q openai-whisper==20240930
            """),
            _code("""
                #@title Model size
                model_size = "small" #@param ["tiny", "base", "small", "medium"]
                import whisper
                model = whisper.load_model(model_size, device="cuda")
            """),
            _code("""
                from google.colab import files
                uploaded = files.upload()
                audio_path = next(iter(uploaded))
                !ffmpeg -hide_banner -loglevel error -y -i "{audio_path}" -ar 16000 -ac 1 clip16k.wav
            """),
            _code("""
                result = model.transcribe("clip16k.wav", fp16=True)
                for seg in result["segments"]:
                    print(f"[{seg['start']:7.1f} -> {seg['end']:7.1f}] {seg['text'].strip()}")
                with open("transcript.txt", "w") as fh:
                    fh.write(result["text"])
                files.download("transcript.txt")
            """),
        ),
        setup=("%%capture", "!apt-get -qq update && apt-get -qq install -y ffmpeg", "!pip install -U -q openai-whisper"),
        user=("uploaded = files.upload()", 'files.download("transcript.txt")'),
        nbformat_minor=5,
        patterns=(
            "research before setup", "inspection", "apt-get install", "files.upload", "model loading", "{expr}",
            "run a tool", "plots/prints",
        ),
    ),
    Case(
        name="whisperx_ref_secret_diarize",
        cells=(
            _code("""
                WHISPERX_REF = "v3.1.6"
                !pip install -q "git+https://github.com/m-bain/whisperX.git@$WHISPERX_REF"
                !pip install -q ctranslate2==4.4.0
                import torch
                print(torch.cuda.get_device_name(0))
            """),
            _code("""
                from google.colab import userdata
                hf_token = userdata.get("HF_TOKEN")
            """),
            _code("""
                #@title Your recording
                recording_url = "https://example.org/interview.mp3" #@param {type:"string"}
                language = "en" #@param ["en", "de", "fr"]
                !wget -q -O interview.mp3 "$recording_url"
            """),
            _code("""
                import whisperx
                device = "cuda"
                audio = whisperx.load_audio("interview.mp3")
                asr = whisperx.load_model("large-v2", device, compute_type="float16", language=language)
                result = asr.transcribe(audio, batch_size=16)
                align_model, meta = whisperx.load_align_model(language_code=language, device=device)
                result = whisperx.align(result["segments"], align_model, meta, audio, device)
                diarize = whisperx.DiarizationPipeline(use_auth_token=hf_token, device=device)
                result = whisperx.assign_word_speakers(diarize(audio), result)
                for seg in result["segments"][:10]:
                    print(seg.get("speaker", "?"), seg["text"])
            """),
        ),
        setup=("whisperX.git@$WHISPERX_REF", "!pip install -q ctranslate2"),
        user=('userdata.get("HF_TOKEN")', "!wget -q -O interview.mp3"),
        patterns=(
            "constant then @$BRANCH", "pip install git+", "userdata token", "user media from form URL",
            "model loading", "plots/prints",
        ),
    ),
    Case(
        name="spacy_nltk_pin_loop_try",
        cells=(
            _code("""
                import subprocess, sys
                PINS = ["spacy==3.7.5", "nltk==3.9.1"]
                for spec in PINS:
                    subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)
                !python -m spacy download en_core_web_sm 2>&1 > /dev/null
            """),
            _code("""
                import nltk
                nltk.download("punkt_tab", quiet=True)
                nltk.download("stopwords", quiet=True)
                import spacy
                try:
                    nlp = spacy.load("en_core_web_sm")  # already there
                except OSError:
                    spacy.cli.download("en_core_web_sm")
                    nlp = spacy.load("en_core_web_sm")  # freshly downloaded
            """),
            Markdown("## Entities and frequent words"),
            _code("""
                from collections import Counter
                from nltk.corpus import stopwords
                from nltk.tokenize import word_tokenize
                text = "Ada Lovelace worked with Charles Babbage in London on the Analytical Engine in 1843."
                doc = nlp(text)
                print([(ent.text, ent.label_) for ent in doc.ents])
                stop = set(stopwords.words("english"))
                words = [w.lower() for w in word_tokenize(text) if w.isalpha() and w.lower() not in stop]
                print(Counter(words).most_common(5))
            """),
        ),
        setup=(
            "for spec in PINS:",
            'subprocess.run([sys.executable, "-m", "pip"',
            "!python -m spacy download",
            'nltk.download("punkt_tab"',
            'nltk.download("stopwords"',
            "try:",
            "# already there",
            "except OSError:",
            "spacy.cli.download(",
            "# freshly downloaded",
        ),
        kept_setup=("try:", "# already there", "except OSError:", "spacy.cli.download(", "# freshly downloaded"),
        patterns=(
            "subprocess.run install", "try import/except install", "setup binds a name", "imports of installed",
            "plots/prints",
        ),
    ),
    Case(
        name="sd_webui_checkpoint_drive",
        cells=(
            Markdown("# Stable Diffusion web UI\nRun the cells in order; the last one prints a public link."),
            _code("""
                #@title 1. Install the web UI
                !test -d /content/stable-diffusion-webui || git clone -q https://github.com/AUTOMATIC1111/stable-diffusion-webui /content/stable-diffusion-webui
                %cd /content/stable-diffusion-webui
                !apt-get -y install -qq aria2 > /dev/null
                !pip install -q xformers==0.0.27.post2
                !python launch.py --exit --skip-torch-cuda-test --xformers
            """),
            _code("""
                #@title 2. Checkpoint
                checkpoint_url = "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors" #@param {type:"string"}
                ckpt_name = checkpoint_url.split("/")[-1]
                !aria2c -q -c -x 16 -s 16 -k 1M "{checkpoint_url}" -d models/Stable-diffusion -o "{ckpt_name}"
            """),
            _code("""
                #@title 3. Keep the images on Drive
                from google.colab import drive
                drive.mount("/content/drive")
                !mkdir -p /content/drive/MyDrive/sd-outputs
                !rm -rf outputs && ln -s /content/drive/MyDrive/sd-outputs outputs
            """),
            _code("""
                #@title 4. Launch
                !python launch.py --share --xformers --ckpt "models/Stable-diffusion/{ckpt_name}" --enable-insecure-extension-access
            """),
        ),
        setup=(
            "!test -d /content/stable-diffusion-webui || git clone",
            "%cd /content/stable-diffusion-webui",
            "!apt-get -y install -qq aria2",
            "!pip install -q xformers",
            "launch.py --exit",
            "!aria2c -q -c",
        ),
        user=('drive.mount("/content/drive")', "!mkdir -p /content/drive/MyDrive", "ln -s /content/drive/MyDrive"),
        kept_setup=("%cd /content/stable-diffusion-webui",),
        nbformat_minor=5,
        patterns=("%cd", "apt-get install", "form field in install", "{expr}", "drive mount + cp", "run a tool"),
    ),
    Case(
        name="gradio_pyngrok_input_token",
        cells=(
            _code("""
                !pip install -U gradio==4.44.1 pyngrok==7.2.0 --quiet 2>&1 > /dev/null
            """),
            _code("""
                import numpy as np
                import gradio as gr

                def sepia(img, strength):
                    kernel = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
                    toned = img @ kernel.T
                    return np.clip((1 - strength) * img + strength * toned, 0, 255).astype(np.uint8)

                demo = gr.Interface(sepia, [gr.Image(), gr.Slider(0, 1, value=0.8)], "image")
            """),
            _code("""
                from pyngrok import ngrok
                ngrok.set_auth_token(input("ngrok authtoken: "))
                demo.launch(server_name="0.0.0.0", server_port=7860, prevent_thread_lock=True)
                tunnel = ngrok.connect(7860)
                print("public URL:", tunnel.public_url)
            """),
        ),
        setup=("!pip install -U gradio",),
        user=("ngrok.set_auth_token(input(",),
        runnable=True,
        patterns=("input()", "imports of installed", "plots/prints"),
    ),
    Case(
        name="jax_flax_wandb_login_time",
        cells=(
            _code("""
                !nvcc --version | tail -n 1
                !pip install -U -q "jax[cuda12]==0.4.33" flax==0.9.0 optax==0.2.3
                !pip install -U wandb --quiet 2>&1 > /dev/null
            """),
            _code("""
                import jax, jax.numpy as jnp
                print(jax.devices())
                import wandb
                wandb.login()
            """),
            _code("""
                import optax
                from flax import linen as nn

                class MLP(nn.Module):
                    @nn.compact
                    def __call__(self, x):
                        x = nn.relu(nn.Dense(64)(x))
                        return nn.Dense(1)(x)

                cfg = {"lr": 3e-3, "steps": 500}
                run = wandb.init(project="jax-mlp-colab", config=cfg)
            """),
            _code("""
                %%time
                key = jax.random.PRNGKey(0)
                x = jax.random.normal(key, (512, 8))
                y = jnp.sin(x.sum(axis=1, keepdims=True))
                model = MLP()
                params = model.init(key, x)
                tx = optax.adam(cfg["lr"])
                opt_state = tx.init(params)

                @jax.jit
                def step(params, opt_state):
                    loss, grads = jax.value_and_grad(lambda p: jnp.mean((model.apply(p, x) - y) ** 2))(params)
                    updates, opt_state = tx.update(grads, opt_state)
                    return optax.apply_updates(params, updates), opt_state, loss

                for i in range(cfg["steps"]):
                    params, opt_state, loss = step(params, opt_state)
                    if i % 50 == 0:
                        wandb.log({"loss": float(loss)}, step=i)
                run.finish()
            """),
        ),
        setup=('!pip install -U -q "jax[cuda12]', "!pip install -U wandb"),
        user=("wandb.login()",),
        patterns=("inspection", "imports of installed", "notebook_login", "plots/prints"),
    ),
    Case(
        name="r_via_rpy2_cell_magic",
        cells=(
            _code("""
                !apt-get update -qq && apt-get install -y -qq r-base-core r-cran-ggplot2 r-cran-broom > /dev/null
                %pip install -q rpy2==3.5.16
                %load_ext rpy2.ipython
            """),
            _code("""
                import numpy as np, pandas as pd
                rng = np.random.default_rng(0)
                df = pd.DataFrame({"dose": np.repeat([0.5, 1.0, 2.0], 20)})
                df["len"] = 5 + 8 * np.log(df["dose"]) + rng.normal(0, 2, len(df))
            """),
            _code("""
                %%R -i df -w 6 -h 4 --units in -r 110
                library(ggplot2)
                fit <- lm(len ~ log(dose), data = df)
                print(broom::tidy(fit))
                ggplot(df, aes(factor(dose), len)) + geom_boxplot() + theme_minimal()
            """),
        ),
        setup=("!apt-get update -qq && apt-get install -y -qq r-base-core", "%pip install -q rpy2"),
        runnable=True,
        patterns=("apt-get install", "run a tool", "plots/prints"),
    ),
    Case(
        name="julia_shell_writefile_run",
        cells=(
            _code("""
                %%shell
                set -e
                JULIA_VERSION=1.10.5
                if ! command -v julia > /dev/null; then
                  wget -nv https://julialang-s3.julialang.org/bin/linux/x64/1.10/julia-${JULIA_VERSION}-linux-x86_64.tar.gz -O /tmp/julia.tar.gz
                  tar -xzf /tmp/julia.tar.gz -C /usr/local --strip-components 1
                  rm /tmp/julia.tar.gz
                fi  # julia now lives in /usr/local/bin
                julia -e 'using Pkg; Pkg.add(["OrdinaryDiffEq", "CSV", "DataFrames"]); Pkg.precompile()'
            """),
            Markdown("The Lorenz system, solved in Julia and plotted from Python."),
            _code("""
                %%writefile lorenz.jl
                using OrdinaryDiffEq, CSV, DataFrames
                function lorenz!(du, u, p, t)
                    s, r, b = p
                    du[1] = s * (u[2] - u[1])
                    du[2] = u[1] * (r - u[3]) - u[2]
                    du[3] = u[1] * u[2] - b * u[3]
                end
                prob = ODEProblem(lorenz!, [1.0, 0.0, 0.0], (0.0, 40.0), (10.0, 28.0, 8 / 3))
                sol = solve(prob, Tsit5(), saveat = 0.01)
                CSV.write("lorenz.csv", DataFrame(t = sol.t, x = sol[1, :], y = sol[2, :], z = sol[3, :]))
            """),
            _code("""
                !julia lorenz.jl
                import pandas as pd
                import matplotlib.pyplot as plt
                traj = pd.read_csv("lorenz.csv")
                ax = plt.axes(projection="3d")
                ax.plot(traj.x, traj.y, traj.z, lw=0.5)
                plt.show()
            """),
        ),
        setup=(
            "%%shell",
            "set -e",
            "JULIA_VERSION=1.10.5",
            "if ! command -v julia",
            "wget -nv https://julialang-s3",
            "tar -xzf /tmp/julia.tar.gz",
            "rm /tmp/julia.tar.gz",
            "fi  # julia now lives",
            "julia -e 'using Pkg",
        ),
        nbformat_minor=5,
        patterns=("%%shell", "${VAR} env", "curl + tar", "run a tool", "plots/prints"),
    ),
    Case(
        name="latex_matplotlib_colab_guard",
        cells=(
            _code("""
                import sys
                IN_COLAB = "google.colab" in sys.modules
                if IN_COLAB:
                    !apt-get install -y -qq texlive-latex-extra texlive-fonts-recommended dvipng cm-super > /dev/null
                    %pip install -q SciencePlots==2.1.1
            """),
            _code(r"""
                import numpy as np
                import matplotlib.pyplot as plt
                import scienceplots
                plt.style.use(["science", "grid"])
                plt.rcParams.update({"text.usetex": True, "font.family": "serif"})
                t = np.linspace(0, 4 * np.pi, 400)
                fig, ax = plt.subplots(figsize=(3.5, 2.6))
                ax.plot(t, np.exp(-t / 5) * np.sin(t), label=r"$e^{-t/5}\sin t$")
                ax.set_xlabel(r"$t$ [s]")
                ax.legend()
                fig.savefig("damped.pdf")
                plt.show()
            """),
        ),
        setup=("if IN_COLAB:", "!apt-get install -y -qq texlive-latex-extra", "%pip install -q SciencePlots"),
        runnable=True,
        patterns=("if flag: install", "apt-get install", "imports of installed", "plots/prints"),
    ),
    Case(
        name="gdal_env_pip_build",
        cells=(
            _code("""
                %env CPLUS_INCLUDE_PATH=/usr/include/gdal
                %env C_INCLUDE_PATH=/usr/include/gdal
                !apt-get -qq update && apt-get -qq install -y gdal-bin libgdal-dev > /dev/null
                !pip install -q "GDAL==$(gdal-config --version)" --no-build-isolation
                !pip install -q rasterio==1.4.1
            """),
            _code("""
                import numpy as np
                from osgeo import gdal, osr
                gdal.UseExceptions()
                arr = np.random.default_rng(1).random((200, 300)).astype("float32")
                ds = gdal.GetDriverByName("GTiff").Create("dem.tif", 300, 200, 1, gdal.GDT_Float32)
                ds.SetGeoTransform((5.0, 0.001, 0, 45.0, 0, -0.001))
                srs = osr.SpatialReference()
                srs.ImportFromEPSG(4326)
                ds.SetProjection(srs.ExportToWkt())
                ds.GetRasterBand(1).WriteArray(arr)
                ds = None
            """),
            _code("""
                !gdalwarp -q -overwrite -t_srs EPSG:3857 dem.tif dem_3857.tif
                !gdalinfo dem_3857.tif | head -n 20
                import rasterio
                with rasterio.open("dem_3857.tif") as src:
                    print(src.crs, src.shape, float(src.read(1).mean()))
            """),
        ),
        setup=(
            "%env CPLUS_INCLUDE_PATH=",
            "%env C_INCLUDE_PATH=",
            "!apt-get -qq update && apt-get -qq install -y gdal-bin",
            '!pip install -q "GDAL==',
            "!pip install -q rasterio",
        ),
        kept_setup=("%env CPLUS_INCLUDE_PATH=", "%env C_INCLUDE_PATH="),
        runnable=True,
        patterns=("%env", "apt-get install", "run a tool", "inspection", "imports of installed", "plots/prints"),
    ),
    Case(
        name="selenium_chromium_driver",
        cells=(
            _code("""
                !apt-get update -qq
                !apt-get install -y -qq chromium-chromedriver
                !cp /usr/lib/chromium-browser/chromedriver /usr/bin
                !pip install -q selenium==4.25.0
                import sys
                sys.path.insert(0, "/usr/lib/chromium-browser/chromedriver")
            """),
            _code("""
                from selenium import webdriver
                from selenium.webdriver.common.by import By
                opts = webdriver.ChromeOptions()
                for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
                    opts.add_argument(flag)
                driver = webdriver.Chrome(options=opts)
            """),
            _code("""
                #@title Page to read
                page = "https://example.com" #@param {type:"string"}
                driver.get(page)
                print(driver.title)
                links = [a.get_attribute("href") for a in driver.find_elements(By.TAG_NAME, "a")]
                print(len(links), "links:", links[:5])
                driver.quit()
            """),
        ),
        setup=(
            "!apt-get update -qq",
            "!apt-get install -y -qq chromium-chromedriver",
            "!cp /usr/lib/chromium-browser/chromedriver",
            "!pip install -q selenium",
        ),
        patterns=("apt-get install", "imports of installed", "plots/prints"),
    ),
    Case(
        name="writefile_requirements_lightgbm",
        cells=(
            _code("""
                %%writefile requirements.txt
                lightgbm==4.5.0
                shap==0.46.0
                scikit-learn==1.5.2
            """),
            _code("""
                !pip install -q -r requirements.txt
                !pip list 2>/dev/null | grep -iE "lightgbm|shap"
            """),
            _code("""
                import lightgbm as lgb
                import shap
                from sklearn.datasets import load_breast_cancer
                from sklearn.model_selection import train_test_split
                X, y = load_breast_cancer(return_X_y=True, as_frame=True)
                X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0)
                clf = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, verbose=-1).fit(X_tr, y_tr)
                print("accuracy:", clf.score(X_te, y_te))
                shap.summary_plot(shap.TreeExplainer(clf).shap_values(X_te), X_te, max_display=8)
            """),
        ),
        setup=(
            "%%writefile requirements.txt",
            "lightgbm==4.5.0",
            "shap==0.46.0",
            "scikit-learn==1.5.2",
            "!pip install -q -r requirements.txt",
        ),
        runnable=True,
        patterns=("inspection", "imports of installed", "plots/prints"),
    ),
)
