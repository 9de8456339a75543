// Negative binomial with correlated varying intercepts and slopes:
// count ~ 1 + x + (1 + x | clinic), family = negbinomial().
// Written for the benchmark in the style of brms's generated code (brms 2.2x): centered
// population-level design Xc with a temporary Intercept, correlated non-centered group
// effects r_1 = scale_r_cor(z_1, sd_1, L_1), the linear predictor built in a loop over
// observations, the likelihood as one neg_binomial_2_log_glm call. The priors are hbstan's
// defaults (so that both programs sample the same posterior): normal on the Intercept and on
// b, inv_gamma(0.4, 0.3) on the shape (brms's default too), half-normal on the SDs,
// lkj_corr_cholesky(2); brms writes their values into the program as literals, here they are
// data (same values).
functions {
  /* compute correlated group-level effects
   * Args:
   *   z: matrix of unscaled group-level effects
   *   SD: vector of standard deviation parameters
   *   L: cholesky factor correlation matrix
   * Returns:
   *   matrix of scaled group-level effects
   */
  matrix scale_r_cor(matrix z, vector SD, matrix L) {
    // r is stored in another dimension order than z
    return transpose(diag_pre_multiply(SD, L) * z);
  }
}
data {
  int<lower=1> N;  // total number of observations
  array[N] int Y;  // response variable
  int<lower=1> K;  // number of population-level effects
  matrix[N, K] X;  // population-level design matrix (first column: intercept)
  int<lower=1> Kc;  // number of population-level effects after centering
  // data for group-level effects of ID 1
  int<lower=1> N_1;  // number of grouping levels
  int<lower=1> M_1;  // number of coefficients per level
  array[N] int<lower=1> J_1;  // grouping indicator per observation
  // group-level predictor values
  vector[N] Z_1_1;
  vector[N] Z_1_2;
  int<lower=1> NC_1;  // number of group-level correlations
  // prior hyperparameters (hbstan's defaults)
  real prior_Intercept_loc;
  real<lower=0> prior_Intercept_scale;
  vector<lower=0>[Kc] prior_b_scale;
  real<lower=0> prior_shape_alpha;
  real<lower=0> prior_shape_beta;
  vector<lower=0>[M_1] prior_sd_1_scale;
  real<lower=0> prior_L_1_eta;
  int prior_only;  // should the likelihood be ignored?
}
transformed data {
  matrix[N, Kc] Xc;  // centered version of X without an intercept
  vector[Kc] means_X;  // column means of X before centering
  for (i in 2:K) {
    means_X[i - 1] = mean(X[, i]);
    Xc[, i - 1] = X[, i] - means_X[i - 1];
  }
}
parameters {
  vector[Kc] b;  // regression coefficients
  real Intercept;  // temporary intercept for centered predictors
  real<lower=0> shape;  // shape parameter
  vector<lower=0>[M_1] sd_1;  // group-level standard deviations
  matrix[M_1, N_1] z_1;  // standardized group-level effects
  cholesky_factor_corr[M_1] L_1;  // cholesky factor of correlation matrix
}
transformed parameters {
  matrix[N_1, M_1] r_1;  // actual group-level effects
  // using vectors speeds up indexing in loops
  vector[N_1] r_1_1;
  vector[N_1] r_1_2;
  real lprior = 0;  // prior contributions to the log posterior
  // compute actual group-level effects
  r_1 = scale_r_cor(z_1, sd_1, L_1);
  r_1_1 = r_1[, 1];
  r_1_2 = r_1[, 2];
  lprior += normal_lpdf(b | 0, prior_b_scale);
  lprior += normal_lpdf(Intercept | prior_Intercept_loc, prior_Intercept_scale);
  lprior += inv_gamma_lpdf(shape | prior_shape_alpha, prior_shape_beta);
  lprior += normal_lpdf(sd_1 | 0, prior_sd_1_scale)
    - 2 * normal_lccdf(0 | 0, 1);
  lprior += lkj_corr_cholesky_lpdf(L_1 | prior_L_1_eta);
}
model {
  // likelihood including constants
  if (!prior_only) {
    // initialize linear predictor term
    vector[N] mu = rep_vector(0.0, N);
    mu += Intercept;
    for (n in 1:N) {
      // add more terms to the linear predictor
      mu[n] += r_1_1[J_1[n]] * Z_1_1[n] + r_1_2[J_1[n]] * Z_1_2[n];
    }
    target += neg_binomial_2_log_glm_lpmf(Y | Xc, mu, b, shape);
  }
  // priors including constants
  target += lprior;
  target += std_normal_lpdf(to_vector(z_1));
}
generated quantities {
  // actual population-level intercept
  real b_Intercept = Intercept - dot_product(means_X, b);
  // compute group-level correlations
  corr_matrix[M_1] Cor_1 = multiply_lower_tri_self_transpose(L_1);
  vector<lower=-1, upper=1>[NC_1] cor_1;
  // extract upper diagonal of correlation matrix
  for (k in 1:M_1) {
    for (j in 1:(k - 1)) {
      cor_1[choose(k - 1, 2) + j] = Cor_1[j, k];
    }
  }
}
